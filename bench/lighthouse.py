#!/usr/bin/env python
"""Run Lighthouse 12 on the public pages, served in the production configuration.

Usage::

    .venv/bin/python bench/lighthouse.py                 # report only, exit 0
    .venv/bin/python bench/lighthouse.py --strict        # exit 1 when a category is below 95
    .venv/bin/python bench/lighthouse.py --out bench/out/lh --page home --page case

Goal from the issue: 100 in performance, accessibility, best practices and SEO on the home
page, the filtered list, a case page and a treatment page; none below 95.

What it does, in order:

1. Installs ``lighthouse@12.2.3`` (exact) into a cache folder outside the repo
   (``~/.cache/gallery-lighthouse``, or ``$GALLERY_LIGHTHOUSE_DIR``) when it is not there yet,
   so the repo carries no ``node_modules`` and no ``package.json``.
2. Builds a throwaway environment in a temp folder: its own SQLite database, media root and
   cache folder, ``DJANGO_DEBUG=off``, a dummy secret key. Nothing is written to the repo's
   ``db.sqlite3``, ``media/`` or ``.cache/``; only ``staticfiles/`` (git-ignored) is filled by
   ``collectstatic``, because production serves the hashed, compressed files from there.
3. ``migrate``, ``seed_demo --count 30``, ``collectstatic``, then gunicorn with 2 workers on
   127.0.0.1 (a free port in 18600-18699). Public renditions are served by the app itself
   (``SERVE_PUBLIC_MEDIA`` is on by default without S3), like the embedded default in production.
4. Runs the Lighthouse CLI on each page (``--runs N`` times, keeping the median run) with
   Debian's Chromium, mobile emulation and simulated throttling (Lighthouse's defaults, i.e.
   what PageSpeed Insights reports), keeps each JSON report, prints a page x category table
   and, for every category below 100, the audits that cost points with the elements and
   values they point at.

The machine has no internet: Chromium is told to resolve no name but the loopback ones
(see ``CHROME_FLAGS``), so no run waits on a DNS answer or a connection that cannot come.

There is no TLS here: ``DJANGO_HTTPS=off`` keeps settings that redirect plain http to https
when debug is off from sending every page (and Lighthouse's own robots.txt fetch, which no
``--extra-headers`` reaches) to an https://127.0.0.1 where nothing listens. Everything else is
the production default. Lighthouse treats ``127.0.0.1`` as a secure context: ``is-on-https``
passes and ``redirects-http`` is "not applicable" over plain http here (checked in Lighthouse
12.2.3's ``url-utils.js`` and ``redirects-http.js``), so best practices can reach 100 without
TLS; what HTTPS-only mode adds (the redirect, HSTS, secure cookies) is not audited by
Lighthouse on a loopback address anyway.

Every child process is started by this script in its own session and stopped by its pid (its
process group for Lighthouse, whose Chromium would otherwise outlive a timed-out run) in a
``finally``. The run is bounded: each step has a timeout, and so does each Lighthouse run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent  # the Django project root (holds manage.py)
VENV_BIN = Path(sys.executable).parent  # gunicorn lives next to the interpreter running us

LIGHTHOUSE_VERSION = "12.2.3"
LIGHTHOUSE_DIR = Path(
    os.environ.get("GALLERY_LIGHTHOUSE_DIR", Path.home() / ".cache" / "gallery-lighthouse")
)
CHROMIUM = "/usr/bin/chromium"
# --disable-background-networking / --disable-component-update / --disable-sync: the machine
# has no internet, and a browser that keeps trying to reach Google's services can slow or
# stall a run; none of it is part of what the page itself does.
# Even with those, Chromium 156 still resolves accounts.google.com and clients2.google.com
# (seen with strace): the host-resolver rule answers every name but the loopback one with
# "not found" at once, so no DNS query leaves the machine and none can stall a run. The
# pages under test only load from 127.0.0.1, so nothing measured changes; a page that
# started to load a third-party resource would show it as a failed request (and a console
# error in best practices), which is the truth on this offline machine anyway.
CHROME_FLAGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-background-networking "
    "--disable-component-update --no-first-run --disable-sync "
    '--host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"'
)
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
CATEGORY_LABELS = {
    "performance": "perf",
    "accessibility": "a11y",
    "best-practices": "best-pr",
    "seo": "seo",
}
TARGET = 100  # the goal
FLOOR = 95  # --strict fails below this
PORTS = range(18600, 18700)
SEED_COUNT = 30

# Items shown per failing audit: enough to locate the element without flooding the terminal.
MAX_ITEMS = 6
SNIPPET_CHARS = 160


@dataclass
class Page:
    key: str
    path: str  # resolved against the server's base URL ("" until known, for the case page)
    label: str


@dataclass
class Result:
    page: Page
    url: str
    report: Path
    scores: dict[str, int | None] = field(default_factory=dict)
    lhr: dict[str, Any] = field(default_factory=dict)
    error: str = ""


# --- setup -------------------------------------------------------------------------------


def lighthouse_cli() -> Path:
    """Return Lighthouse's CLI entry point, installing the pinned version when missing.

    The install goes to a cache folder outside the repo so that others working in the tree
    see no node_modules, and the version is read back so a stale install is replaced.
    """
    cli = LIGHTHOUSE_DIR / "node_modules" / "lighthouse" / "cli" / "index.js"
    manifest = LIGHTHOUSE_DIR / "node_modules" / "lighthouse" / "package.json"
    installed = ""
    if manifest.is_file():
        installed = json.loads(manifest.read_text()).get("version", "")
    if cli.is_file() and installed == LIGHTHOUSE_VERSION:
        return cli
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is not on PATH: install Node.js 18+ to run Lighthouse.")
    print(f"Installing lighthouse@{LIGHTHOUSE_VERSION} into {LIGHTHOUSE_DIR} ...", flush=True)
    LIGHTHOUSE_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            npm,
            "install",
            "--save-exact",
            f"lighthouse@{LIGHTHOUSE_VERSION}",
            "--prefix",
            str(LIGHTHOUSE_DIR),
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ],
        check=True,
        timeout=600,
    )
    if not cli.is_file():
        sys.exit(f"npm finished but {cli} is missing.")
    return cli


def production_env(tmp: Path) -> dict[str, str]:
    """The environment of a production-like run, isolated in ``tmp``.

    Variables that could point the app at real data (a database, a bucket, a shared cache)
    are dropped from the inherited environment rather than trusted to be unset.
    """
    drop_prefixes = ("DJANGO_", "DATABASE_", "AWS_", "EMAIL_")
    drop = {"REDIS_URL", "MEDIA_ROOT", "CACHE_DIR", "SERVE_PUBLIC_MEDIA", "PUBLIC_MEDIA_URL"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith(drop_prefixes)}
    env.update(
        {
            "DJANGO_DEBUG": "off",
            "DJANGO_SECRET_KEY": "lighthouse-only",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            # Plain http on loopback: see the module docstring.
            "DJANGO_HTTPS": "off",
            "DATABASE_URL": f"sqlite:///{tmp / 'lh.sqlite3'}",
            "MEDIA_ROOT": str(tmp / "media"),
            "CACHE_DIR": str(tmp / "cache"),
            # Keep the server's console quiet: the log goes to a file in tmp.
            "LOG_LEVEL": "WARNING",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 300) -> None:
    started = time.monotonic()
    print(f"  manage.py {' '.join(args)}", end=" ", flush=True)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        print("FAILED")
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        sys.exit(f"manage.py {' '.join(args)} failed ({proc.returncode}).")
    print(f"({time.monotonic() - started:.1f}s)", flush=True)


def free_port() -> int:
    for port in PORTS:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # Same option as gunicorn's listener, so a port whose earlier connections are
            # still in TIME_WAIT (a previous run of this script) counts as free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    sys.exit(f"No free port in {PORTS.start}-{PORTS.stop - 1} on 127.0.0.1.")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Report a redirect instead of following it: a page that redirects (to https, to a
    login) is not the page we meant to measure, and following it to an https URL on our
    plain-http server would only end in an obscure TLS error."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# No proxy: every request of this script goes to our own server on the loopback address,
# whatever http_proxy the shell has.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    try:
        with OPENER.open(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def stop(proc: subprocess.Popen[bytes], name: str, group: bool = False) -> None:
    """Stop a child this script started, by its pid (or its own process group).

    SIGTERM first so gunicorn's master can stop its workers cleanly; SIGKILL if it lingers.
    For a group, a Chromium left behind by a Lighthouse that already exited is still in the
    group the leader's pid names, so the group is signalled even then.
    """

    def send(sig: int) -> None:
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)

    try:
        if proc.poll() is not None:
            if group:
                send(signal.SIGKILL)  # stragglers only; usually raises ProcessLookupError
            return
        send(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            print(f"  {name} ignored SIGTERM; killing", file=sys.stderr)
            send(signal.SIGKILL)
            proc.wait(timeout=10)
        if group:
            send(signal.SIGKILL)  # Chromium children that outlived their Lighthouse
    except ProcessLookupError:
        pass  # nothing left to stop


@contextmanager
def gunicorn(env: dict[str, str], port: int, logdir: Path) -> Iterator[str]:
    """Serve the app with gunicorn (2 workers) on 127.0.0.1:port; yield the base URL."""
    base = f"http://127.0.0.1:{port}"
    log = (logdir / "gunicorn.log").open("wb")
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "gunicorn"),
            "clinic.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--timeout",
            "60",
            "--access-logfile",
            str(logdir / "access.log"),
            "--access-logformat",
            '%(s)s "%(r)s" %(b)s',
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # our Ctrl-C goes to us; we stop it ourselves in finally
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                sys.exit(f"gunicorn exited ({proc.returncode}); see {logdir / 'gunicorn.log'}")
            try:
                if get(f"{base}/healthz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"gunicorn did not answer in 30s; see {logdir / 'gunicorn.log'}")
            time.sleep(0.3)
        print(f"  gunicorn pid {proc.pid} on {base}", flush=True)
        yield base
    finally:
        stop(proc, "gunicorn")
        log.close()


def resolve_pages(base: str, wanted: Sequence[str], logdir: Path) -> list[Page]:
    pages = {
        "home": Page("home", "/", "home"),
        "list": Page("list", "/gallery/?fitzpatrick=4", "list (fitzpatrick=4)"),
        "case": Page("case", "", "case"),
        "treatment": Page("treatment", "/treatments/microneedling/", "treatment"),
    }
    if "case" in wanted:
        status, body = get(f"{base}/api/cases/")
        results = json.loads(body).get("results", []) if status == 200 else []
        if not results:
            sys.exit(
                f"/api/cases/ answered {status} with no case (did seed_demo publish any?); "
                f"see {logdir / 'gunicorn.log'}"
            )
        # The API gives an absolute URL built from our Host header; keep only its path.
        url = results[0]["url"]
        pages["case"].path = "/" + url.split("/", 3)[3]
        pages["case"].label = f"case {results[0]['id']}"
    return [pages[key] for key in wanted]


def warm(base: str, pages: Sequence[Page]) -> None:
    """Request each page a few times before measuring.

    The first request to each gunicorn worker imports the views and fills the public page
    cache; a production server has long done both, so an unwarmed first hit would charge
    Lighthouse's server-response time with start-up cost no visitor sees. Four requests per
    page make it very likely that both workers have served each one.
    """
    for page in pages:
        for _ in range(4):
            status, _body = get(base + page.path, timeout=30)
            if status != 200:
                sys.exit(f"{page.path} answered {status}, not 200: nothing to measure.")


# --- running Lighthouse ----------------------------------------------------------------


def run_lighthouse(
    cli: Path, page: Page, url: str, out: Path, tmp: Path, timeout: float, tag: str = "1"
) -> Result:
    report = out / f"{page.key}.{tag}.report.json"
    result = Result(page=page, url=url, report=report)
    cmd = [
        shutil.which("node") or "node",
        str(cli),
        url,
        "--output=json",
        f"--output-path={report}",
        f"--chrome-path={CHROMIUM}",
        f"--chrome-flags={CHROME_FLAGS}",
        f"--only-categories={','.join(CATEGORIES)}",
        # Never prompt for, nor try to send, crash reports: no TTY and no internet here.
        "--no-enable-error-reporting",
        "--max-wait-for-load=30000",
        "--quiet",
    ]
    # chrome-launcher puts its throwaway profile under os.tmpdir(): keep it in our tmp so
    # an interrupted run leaves nothing in /tmp.
    env = {**os.environ, "TMPDIR": str(tmp)}
    log = out / f"{page.key}.{tag}.lighthouse.log"
    started = time.monotonic()
    with log.open("wb") as log_file:
        # Own session: on a timeout the whole group (node and the Chromium it launched)
        # is stopped through Lighthouse's pid.
        proc = subprocess.Popen(
            cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            result.error = f"timed out after {timeout:.0f}s"
        finally:
            stop(proc, "lighthouse", group=True)
    elapsed = time.monotonic() - started
    if not result.error and proc.returncode != 0:
        result.error = f"lighthouse exited {proc.returncode}; see {log}"
    if report.is_file():
        result.lhr = json.loads(report.read_text())
        runtime = result.lhr.get("runtimeError")
        if runtime and not result.error:
            result.error = f"{runtime.get('code')}: {runtime.get('message')}"
        for cat in CATEGORIES:
            score = result.lhr.get("categories", {}).get(cat, {}).get("score")
            result.scores[cat] = None if score is None else round(score * 100)
    elif not result.error:
        result.error = f"no report written; see {log}"
    status = result.error or "  ".join(
        f"{CATEGORY_LABELS[c]} {result.scores.get(c)}" for c in CATEGORIES
    )
    # Lighthouse's own CPU benchmark of this run: when it drops, other work on the machine
    # took the CPU and TBT (hence performance) is pessimistic, not the page slower.
    index = result.lhr.get("environment", {}).get("benchmarkIndex")
    if index and not result.error:
        status += f"  (cpu index {index:.0f}, load {os.getloadavg()[0]:.1f})"
    print(f"  {page.label:<24} #{tag:<2} {elapsed:5.1f}s  {status}", flush=True)
    return result


def median_run(runs: Sequence[Result]) -> Result:
    """The run with the median performance score (Lighthouse's own advice for variance).

    Only performance moves between runs (simulated throttling still depends on the
    machine's load); the other categories are deterministic for the same HTML.
    """
    done = [r for r in runs if r.lhr and not r.error]
    if not done:
        return runs[-1]
    done.sort(key=lambda r: r.scores.get("performance") or 0)
    return done[len(done) // 2]


# --- reporting -------------------------------------------------------------------------


def print_table(results: Sequence[Result]) -> None:
    width = max(len(r.page.label) for r in results) + 2
    header = "page".ljust(width) + "".join(f"{CATEGORY_LABELS[c]:>9}" for c in CATEGORIES)
    print(header)
    print("-" * len(header))
    for r in results:
        cells = []
        for c in CATEGORIES:
            score = r.scores.get(c)
            text = "-" if score is None else str(score)
            # A mark beside a score under the floor, so --strict failures stand out.
            if score is not None and score < FLOOR:
                text += "!"
            cells.append(f"{text:>9}")
        print(r.page.label.ljust(width) + "".join(cells) + (f"   {r.error}" if r.error else ""))


def _short(text: str, limit: int = SNIPPET_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_item(item: dict[str, Any]) -> str:
    """One line for a table row of an audit's details: the element, the URL, the numbers.

    Lighthouse's row shapes differ per audit; this picks the fields developers act on.
    """
    parts: list[str] = []
    node = item.get("node")
    if isinstance(node, dict):
        parts.append(node.get("selector", ""))
        if node.get("snippet"):
            parts.append(_short(node["snippet"]))
        if node.get("explanation"):
            parts.append("— " + _short(node["explanation"], 300))
    for key in ("url", "source", "description", "label", "groupLabel"):
        value = item.get(key)
        if isinstance(value, dict):
            if value.get("type") == "source-location":
                parts.append(f"{value.get('url')}:{value.get('line')}:{value.get('column')}")
            elif value.get("type") == "node":
                parts.append(value.get("selector", "") + " " + _short(value.get("snippet", "")))
            else:
                parts.append(_short(json.dumps(value), 120))
        elif value not in (None, ""):
            parts.append(_short(str(value), 200))
    numbers = {
        k: v for k, v in item.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    if numbers:
        parts.append(
            ", ".join(f"{k}={v:.0f}" if v >= 10 else f"{k}={v:g}" for k, v in numbers.items())
        )
    nested = item.get("subItems", {})
    if isinstance(nested, dict) and nested.get("items"):
        parts.append(f"(+{len(nested['items'])} sub-items)")
    return " | ".join(p for p in parts if p)


def failing_audits(lhr: dict[str, Any], category: str) -> list[tuple[dict[str, Any], float]]:
    """Audits of a category that lose points or flag a problem, heaviest first.

    Weighted audits are what moves the score; weight-0 diagnostics with a failing score
    are listed after them because they usually explain a weak metric. Audits that could not
    run ("error") are left to ``print_errored``, which names them once for all pages.
    """
    refs = lhr["categories"][category]["auditRefs"]
    out: list[tuple[dict[str, Any], float]] = []
    for ref in refs:
        audit = lhr["audits"].get(ref["id"], {})
        mode = audit.get("scoreDisplayMode")
        score = audit.get("score")
        if mode in ("binary", "numeric", "metricSavings") and score is not None and score < 1:
            out.append((audit, ref.get("weight", 0)))
    out.sort(key=lambda pair: (-pair[1], pair[0].get("score") or 0))
    return out


def print_audit(audit: dict[str, Any], weight: float) -> None:
    value = audit.get("displayValue") or ""
    print(
        f"    - {audit['id']} (score {audit.get('score')}, weight {weight:g})"
        f": {audit.get('title', '')}" + (f" — {value}" if value else "")
    )
    items = (audit.get("details") or {}).get("items") or []
    for item in items[:MAX_ITEMS]:
        if isinstance(item, dict) and (line := describe_item(item)):
            print(f"        · {line}")
    if len(items) > MAX_ITEMS:
        print(f"        · … {len(items) - MAX_ITEMS} more in the JSON report")


def print_failures(results: Sequence[Result]) -> None:
    """Per page: the audits behind every category under 100, then unscored flags.

    A category at 100 can still carry weight-0 findings (experimental accessibility rules,
    performance diagnostics); they are named in one line so they are not lost, without the
    detail that the categories actually losing points get.
    """
    for r in results:
        if not r.lhr:
            continue
        below = [c for c in CATEGORIES if (r.scores.get(c) or 0) < TARGET]
        flagged = {
            c: [a["id"] for a, w in failing_audits(r.lhr, c) if w == 0]
            for c in CATEGORIES
            if c not in below
        }
        if not below and not any(flagged.values()):
            continue
        print(f"\n== {r.page.label}  {r.url}")
        for w in r.lhr.get("runWarnings", []):
            print(f"   run warning: {_short(w, 300)}")
        for cat in below:
            print(f"  [{cat} {r.scores.get(cat)}]")
            if r.scores.get(cat) is None:
                # Lighthouse gives no category score when a weighted audit errored.
                for ref in r.lhr["categories"][cat]["auditRefs"]:
                    audit = r.lhr["audits"].get(ref["id"], {})
                    if audit.get("scoreDisplayMode") == "error" and ref.get("weight"):
                        print(
                            f"    - {ref['id']} could not run, so there is no score: "
                            + _short(audit.get("errorMessage", ""), 200)
                        )
            if cat == "performance":
                metrics = []
                for mid in (
                    "first-contentful-paint",
                    "largest-contentful-paint",
                    "total-blocking-time",
                    "cumulative-layout-shift",
                    "speed-index",
                ):
                    m = r.lhr["audits"].get(mid, {})
                    metrics.append(f"{mid.replace('-', ' ')} {m.get('displayValue', '?')}")
                print("    metrics: " + "; ".join(metrics))
            for audit, weight in failing_audits(r.lhr, cat):
                print_audit(audit, weight)
        for cat, ids in flagged.items():
            if ids:
                print(f"  [{cat} {r.scores.get(cat)}] not scored, flagged: {', '.join(ids)}")


def print_errored(results: Sequence[Result]) -> None:
    """Audits Lighthouse itself failed to compute, once for all pages.

    With Lighthouse 12.2.3 and a much newer Chromium, the bundled trace engine cannot parse
    the browser's frame events, so the diagnostics built on it (LCP element, layout-shift
    culprits, render-blocking resources) error out on every page. They weigh 0, so the
    scores stand, but a weak CLS or LCP then comes without its explanation.
    """
    errored: dict[tuple[str, str], list[str]] = {}
    for r in results:
        for audit in r.lhr.get("audits", {}).values():
            if audit.get("scoreDisplayMode") == "error":
                message = _short(audit.get("errorMessage", ""), 200)
                errored.setdefault((audit["id"], message), []).append(r.page.key)
    if errored:
        print("\nAudits Lighthouse could not compute (not scored; the scores above stand):")
        for (audit_id, message), keys in sorted(errored.items()):
            print(f"  {audit_id} [{', '.join(keys)}]: {message}")


def print_server_errors(logdir: Path) -> None:
    """Non-2xx/3xx answers from the app during the run (a 404 favicon costs points too)."""
    log = logdir / "access.log"
    if not log.is_file():
        return
    bad = [line for line in log.read_text().splitlines() if line[:1] in ("4", "5")]
    if bad:
        print(f"\nServer answered {len(bad)} request(s) with an error status:")
        for line in sorted(set(bad))[:20]:
            print(f"  {line}")


# --- main ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strict", action="store_true", help=f"exit 1 if a score < {FLOOR}")
    parser.add_argument(
        "--out", type=Path, help="folder for the JSON reports (default: a temp dir)"
    )
    parser.add_argument(
        "--page",
        action="append",
        choices=("home", "list", "case", "treatment"),
        help="measure only this page (repeatable; default: all four)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="Lighthouse runs per page; the run with the median performance score is kept",
    )
    parser.add_argument(
        "--timeout", type=float, default=180, help="seconds allowed per Lighthouse run"
    )
    args = parser.parse_args(argv)
    wanted = args.page or ["home", "list", "case", "treatment"]

    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium")
    cli = lighthouse_cli()

    tmp = Path(tempfile.mkdtemp(prefix="gallery-lighthouse-"))
    out = args.out.resolve() if args.out else tmp / "reports"
    out.mkdir(parents=True, exist_ok=True)
    env = production_env(tmp)
    print(f"Environment: {tmp} (DEBUG off, SQLite, own media and cache)", flush=True)

    results: list[Result] = []
    try:
        manage(env, "migrate", "--noinput")
        manage(env, "seed_demo", "--count", str(SEED_COUNT))
        manage(env, "collectstatic", "--noinput", "--verbosity", "0")
        started = time.monotonic()
        with gunicorn(env, free_port(), tmp) as base:
            pages = resolve_pages(base, wanted, tmp)
            warm(base, pages)
            print(f"Lighthouse {LIGHTHOUSE_VERSION}, mobile, simulated throttling:", flush=True)
            for page in pages:
                runs: list[Result] = []
                for n in range(1, max(1, args.runs) + 1):
                    result = run_lighthouse(
                        cli, page, base + page.path, out, tmp, args.timeout, str(n)
                    )
                    if result.error and not result.error.startswith("timed out"):
                        # Lighthouse sometimes loses the trace of a load on a busy machine
                        # (NO_NAVSTART, "please run Lighthouse again"): one retry, no more,
                        # so a page that really breaks it still fails in bounded time.
                        result = run_lighthouse(
                            cli, page, base + page.path, out, tmp, args.timeout, f"{n}b"
                        )
                    runs.append(result)
                results.append(median_run(runs))
        print(f"\nTotal Lighthouse time {time.monotonic() - started:.0f}s\n")
    finally:
        # The database, media and cache of the throwaway environment are never needed
        # again, even after a failure; the reports and the server logs are kept.
        for name in ("lh.sqlite3", "lh.sqlite3-wal", "lh.sqlite3-shm"):
            (tmp / name).unlink(missing_ok=True)
        shutil.rmtree(tmp / "media", ignore_errors=True)
        shutil.rmtree(tmp / "cache", ignore_errors=True)
        # Chromium's own scratch folders (it was pointed at tmp through TMPDIR).
        for scratch in tmp.glob("org.chromium.*"):
            shutil.rmtree(scratch, ignore_errors=True)

    print_table(results)
    print_failures(results)
    print_errored(results)
    print_server_errors(tmp)
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > cores:
        print(
            f"\nNote: load average {load:.1f} on {cores} cores: other work shared the CPU, so"
            " total blocking time and performance are pessimistic; rerun on a quiet machine"
            " (or with --runs 3) before chasing a performance point."
        )
    print(f"\nJSON reports: {out}")
    print(f"Server logs:  {tmp / 'gunicorn.log'}, {tmp / 'access.log'}")

    under = [r for r in results if r.error or any((s or 0) < FLOOR for s in r.scores.values())]
    if under:
        print(f"\n{len(under)} page(s) with a category below {FLOOR} or a failed run.")
    return 1 if args.strict and under else 0


if __name__ == "__main__":
    sys.exit(main())
