#!/usr/bin/env python
"""Lighthouse 12 on the public pages, served in the production configuration.
See bench/README.md."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import app

VERSION = "12.2.3"
CACHE = Path(
    os.environ.get("GALLERY_LIGHTHOUSE_DIR", Path.home() / ".cache" / "gallery-lighthouse")
)
CHROMIUM = "/usr/bin/chromium"
# Nothing calls home, and no name but loopback resolves (the machine is offline; Chromium
# would still look up Google's hosts), so no run waits on a DNS answer that cannot come.
CHROME_FLAGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-background-networking "
    "--disable-component-update --no-first-run --disable-sync "
    '--host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"'
)
CATEGORIES = {"performance": "perf", "accessibility": "a11y", "best-practices": "best-pr"}
CATEGORIES |= {"seo": "seo"}
METRICS = ("first-contentful-paint", "largest-contentful-paint", "total-blocking-time")
METRICS += ("cumulative-layout-shift", "speed-index")
TARGET, FLOOR = 100, 95  # the goal; --strict fails below the floor
PAGES = {"home": "/", "list": "/gallery/?fitzpatrick=4", "case": ""}  # the case: from the API
PAGES |= {"treatment": "/treatments/microneedling/"}


def lighthouse_cli() -> Path:
    """Lighthouse's CLI, the pinned version installed outside the repository if missing."""
    package = CACHE / "node_modules" / "lighthouse"
    cli = package / "cli" / "index.js"
    if cli.is_file() and json.loads((package / "package.json").read_text())["version"] == VERSION:
        return cli
    if not shutil.which("npm"):
        raise SystemExit("npm is not on PATH: install Node.js 18+ to run Lighthouse.")
    print(f"Installing lighthouse@{VERSION} into {CACHE} ...", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    npm = ["npm", "install", "--save-exact", f"lighthouse@{VERSION}", "--prefix", str(CACHE)]
    subprocess.run([*npm, "--no-audit", "--no-fund", "--loglevel=error"], check=True, timeout=600)
    return cli


def run_lighthouse(cli: Path, url: str, out: Path, tmp: Path, timeout: float) -> dict[str, Any]:
    """One Lighthouse run (mobile, simulated throttling: what PageSpeed Insights reports);
    its report, with an "error" key when it failed."""
    report = out.with_suffix(".report.json")
    cmd = [shutil.which("node") or "node", str(cli), url, "--output=json"]
    cmd += [f"--output-path={report}", f"--chrome-path={CHROMIUM}"]
    cmd += [f"--chrome-flags={CHROME_FLAGS}", "--no-enable-error-reporting"]  # no TTY, offline
    cmd += [f"--only-categories={','.join(CATEGORIES)}", "--max-wait-for-load=30000", "--quiet"]
    # Chromium's throwaway profile goes under TMPDIR: keep it in our temp dir.
    env = {**os.environ, "TMPDIR": str(tmp)}
    with out.with_suffix(".log").open("wb") as log:
        # Own session: on a timeout, node and the Chromium it launched stop together.
        proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            proc.wait(timeout=timeout)
            error = f"lighthouse exited {proc.returncode}" if proc.returncode else ""
        except subprocess.TimeoutExpired:
            error = f"timed out after {timeout:.0f}s"
        finally:
            app.stop_group(proc)
    lhr = json.loads(report.read_text()) if report.is_file() else {}
    if lhr.get("runtimeError"):
        error = error or f"{lhr['runtimeError'].get('code')}: {lhr['runtimeError'].get('message')}"
    if not lhr:
        error = error or "no report written"
    return {**lhr, "error": error} if error else lhr


def scores(lhr: dict[str, Any]) -> dict[str, int | None]:
    cats = lhr.get("categories", {})
    return {
        c: None if cats.get(c, {}).get("score") is None else round(cats[c]["score"] * 100)
        for c in CATEGORIES
    }


def losing_audits(lhr: dict[str, Any], category: str) -> list[str]:
    """Audits that cost the category points or flag a problem, heaviest first."""
    found = []
    for ref in lhr["categories"][category]["auditRefs"]:
        audit = lhr["audits"].get(ref["id"], {})
        score = audit.get("score")
        if (
            audit.get("scoreDisplayMode") in ("binary", "numeric", "metricSavings")
            and score is not None
            and score < 1
        ):
            value = f" — {audit['displayValue']}" if audit.get("displayValue") else ""
            items = len((audit.get("details") or {}).get("items") or [])
            weight = ref.get("weight", 0)
            line = f"{audit['id']} (score {score}, weight {weight:g}, {items} items){value}"
            found.append((-ref.get("weight", 0), score, line))
    return [line for *_, line in sorted(found)]


def measure(
    cli: Path, base: str, key: str, path: str, args: argparse.Namespace, out: Path, tmp: Path
) -> dict[str, Any]:
    """``--runs`` runs of one page; the one with the median performance score (the other
    categories do not move between runs)."""
    runs = []
    for n in range(1, max(1, args.runs) + 1):
        for retry in ("", "b"):  # one retry: on a busy machine Lighthouse may lose a trace
            t0 = time.monotonic()
            lhr = run_lighthouse(cli, base + path, out / f"{key}.{n}{retry}", tmp, args.timeout)
            got = lhr.get("error") or "  ".join(
                f"{CATEGORIES[c]} {s}" for c, s in scores(lhr).items()
            )
            index = lhr.get("environment", {}).get("benchmarkIndex")
            if index and not lhr.get("error"):  # a low index: other work shared the CPU
                got += f"  (cpu index {index:.0f}, load {os.getloadavg()[0]:.1f})"
            print(f"  {key} {path:<30} #{n}{retry:<2} {time.monotonic() - t0:5.1f}s  {got}")
            if not lhr.get("error") or "timed out" in lhr["error"]:
                break
        runs.append(lhr)
    done = sorted(
        (r for r in runs if not r.get("error")), key=lambda r: scores(r)["performance"] or 0
    )
    return done[len(done) // 2] if done else runs[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strict", action="store_true", help=f"exit 1 if a score < {FLOOR}")
    parser.add_argument("--out", type=Path, help="folder for the JSON reports (default: temp)")
    parser.add_argument(
        "--page", action="append", choices=list(PAGES), help="repeatable; default all"
    )
    parser.add_argument("--runs", type=int, default=1, help="runs per page; the median is kept")
    parser.add_argument("--timeout", type=float, default=180, help="seconds per Lighthouse run")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    cli = lighthouse_cli()
    app.on_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix="gallery-lighthouse-"))
    out = args.out.resolve() if args.out else tmp / "reports"
    out.mkdir(parents=True, exist_ok=True)
    env = app.environment(tmp)
    print(f"Environment: {tmp} (DEBUG off, SQLite, own media, cache and static files)", flush=True)
    results: dict[str, dict[str, Any]] = {}
    try:
        app.setup(env)
        started = time.monotonic()
        with app.gunicorn(env, tmp, "--timeout", "60") as server:
            pages = {key: PAGES[key] for key in args.page or PAGES}
            if "case" in pages:
                status, _, body = app.get(server.port, "/api/cases/", "application/json")
                if status != 200 or not json.loads(body).get("results"):
                    raise SystemExit(f"/api/cases/ answered {status} with no case")
                pages["case"] = "/" + json.loads(body)["results"][0]["url"].split("/", 3)[3]
            # The first request to each worker imports the views and fills the page cache,
            # long done on a production server: four per page reach both workers.
            for path in pages.values():
                for _ in range(4):
                    if app.get(server.port, path)[0] != 200:
                        raise SystemExit(f"{path} is not answering 200: nothing to measure.")
            print(f"Lighthouse {VERSION}, mobile, simulated throttling:", flush=True)
            for key, path in pages.items():
                results[key] = measure(cli, server.base, key, path, args, out, tmp)
        print(f"\nTotal Lighthouse time {time.monotonic() - started:.0f}s\n")
    finally:
        # The reports and the server logs are kept; the throwaway site is not.
        (tmp / "bench.sqlite3").unlink(missing_ok=True)
        chromium = [p.name for p in tmp.glob("org.chromium.*")]
        for name in ("media", "cache", "staticfiles", *chromium):
            shutil.rmtree(tmp / name, ignore_errors=True)
    return report(results, args.strict, out, tmp)


def report(results: dict[str, dict[str, Any]], strict: bool, out: Path, tmp: Path) -> int:
    rows = []
    for key, lhr in results.items():
        marks = [
            ("-" if s is None else str(s) + ("!" if s < FLOOR else ""))
            for s in scores(lhr).values()
        ]
        rows.append([key, *marks, lhr.get("error", "")])
    app.print_table(rows, ["page", *CATEGORIES.values(), ""])
    errored: dict[str, list[str]] = {}
    for key, lhr in results.items():
        below = [c for c, s in scores(lhr).items() if (s or 0) < TARGET and lhr.get("categories")]
        if below:
            print(f"\n== {key}  {lhr.get('finalDisplayedUrl', '')}")
        for cat in below:
            print(f"  [{cat} {scores(lhr)[cat]}]")
            if cat == "performance":
                got = [
                    f"{m.replace('-', ' ')} {lhr['audits'].get(m, {}).get('displayValue', '?')}"
                    for m in METRICS
                ]
                print("    metrics: " + "; ".join(got))
            for line in losing_audits(lhr, cat):
                print(f"    - {line}")
        for audit in lhr.get("audits", {}).values():
            if audit.get("scoreDisplayMode") == "error":
                errored.setdefault(
                    f"{audit['id']}: {audit.get('errorMessage', '')[:160]}", []
                ).append(key)
    if errored:
        # Lighthouse 12.2.3's trace engine cannot parse a newer Chromium's frame events: the
        # diagnostics built on it error out. They weigh 0, so the scores stand.
        print("\nAudits Lighthouse could not compute (not scored; the scores above stand):")
        for what, keys in sorted(errored.items()):
            print(f"  [{', '.join(keys)}] {what}")
    log = (tmp / "access.log").read_text().splitlines()
    bad = [line for line in log if line.split('" ')[-1][:1] in ("4", "5")]
    if bad:
        print(
            f"\nServer answered {len(bad)} request(s) with an error status:\n  "
            + "\n  ".join(bad[:20])
        )
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print(
            f"\nNote: load average {os.getloadavg()[0]:.1f}: other work shared the CPU, so "
            "total blocking time and performance are pessimistic."
        )
    print(f"\nJSON reports: {out}\nServer logs:  {tmp / 'gunicorn.log'}, {tmp / 'access.log'}")
    under = [
        k
        for k, lhr in results.items()
        if lhr.get("error") or any((s or 0) < FLOOR for s in scores(lhr).values())
    ]
    if under:
        print(f"\n{len(under)} page(s) with a category below {FLOOR} or a failed run.")
    return 1 if strict and under else 0


if __name__ == "__main__":
    sys.exit(main())
