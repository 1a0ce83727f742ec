#!/usr/bin/env python
"""Benchmark the public gallery pages under gunicorn, and what a phone downloads.

Usage::

    .venv/bin/python bench/pages.py             # 15 alternating rounds, 0.6 s per target
    .venv/bin/python bench/pages.py --quick     # smoke test: 1 short round
    .venv/bin/python bench/pages.py --rounds 9 --strict

What is measured (targets from the issue):

* **Throughput** of the gallery list (``/gallery/``) and of one case page (the first case of
  ``/api/cases/``), each against two anchors measured in the same run:

  - the project's *cheapest view*, ``/robots.txt``: a constant Django view that runs the
    whole middleware stack but touches neither the database nor the cache (``/healthz``
    runs ``SELECT 1``, so it is dearer; a 404 is not a view);
  - *the same HTML served as a static file*: the exact bytes of each page, saved into
    STATIC_ROOT before the server starts and served by WhiteNoise from the same gunicorn
    workers, i.e. the floor for those bytes on this stack.

  Targets run one after another for a fixed window each (8 closed-loop connections), round
  by round, with the order rotated every round; every ratio is taken *within* a round
  (paired) and the median of the paired ratios is reported, so drift in machine load hits
  both sides of a pair alike. Rounds are short (5 x 0.6 s) for the same reason.
  Target: list and case pages at least 0.6x the cheapest view.

  Anonymous pages are cached by the app (``gallery/cache.py``), so the rounds measure the
  *warm-cache* path (the warm-up primes the cache; the ``X-Cache: hit`` rate is reported).
  One extra round, labelled *uncached*, appends a unique ``?_=<n>`` to every request: the
  cache key includes the full path, the filter ignores unknown parameters and the page's
  canonical URL drops them, so it renders the same page through a cache miss every time.

* **Phone weight**: Debian's Chromium through Playwright (never a downloaded browser) as a
  390x844 phone at device scale 3, touch, mobile; a fresh context (empty HTTP cache) loads
  the list and the case page until the network is idle, and the bytes on the wire are the
  sum of ``encodedDataLength`` of CDP ``Network.loadingFinished`` (headers included,
  compressed sizes where the server compressed). Lazy images Chromium does not fetch
  without scrolling do not count: that is the point of lazy loading. Those it fetches
  anyway, being within its load-ahead distance of the viewport, do count: a phone fetches
  them too. Target: <= 300 kB per page.

* **Slider JavaScript**: ``static/gallery/compare.js`` raw and gzipped. Target: <= 10 kB
  raw (there is no build step, so raw is what the repository ships; WhiteNoise serves it
  compressed, which is also shown).

kB here is 1000 bytes, as Chromium's DevTools counts.

Isolation: everything is written to a temporary directory, never into the repository: the
SQLite database (unless DATABASE_URL is set, which is then honoured and *is migrated and
seeded*), MEDIA_ROOT, the file cache (CACHE_DIR) and STATIC_ROOT. The project's settings
hard-wire STATIC_ROOT to the repository's ``staticfiles/``, so the server runs with a
two-line settings module, written into the temp dir, that imports ``clinic.settings`` and
changes STATIC_ROOT alone. AWS_* and REDIS_URL are removed from the environment so that
a benchmark can never write to a real bucket or shared cache. gunicorn binds loopback
only, on a free port in 127.0.0.1:18500-18599, with its control socket disabled (its
default path under $HOME would be shared with any other gunicorn on the machine), and is
always stopped, by its own process group id, before the script returns.

The exit status is 0 (it is a benchmark) unless ``--strict`` is given and a target failed
or could not be measured.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import itertools
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common import interrupted, loadavg, print_table, stop_group, tail

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent  # the Django project root (holds manage.py)

# Targets from the issue.
TARGET_PAGE_RATIO = 0.6  # page req/s / cheapest view req/s, at least
TARGET_PHONE_KB = 300.0  # bytes transferred by the initial view on a phone, at most
TARGET_SLIDER_KB = 10.0  # compare.js, at most
KB = 1000  # as DevTools counts

HOST = "127.0.0.1"  # loopback only, never a routable address
PORTS = range(18500, 18600)
SLIDER_JS = ROOT / "static" / "gallery" / "compare.js"
CHEAPEST_PATH = "/robots.txt"
LIST_PATH = "/gallery/"

# A browser-like Accept: the page cache key includes it, and the load generator and the
# warm-up must hit the same key.
HEADERS = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# No sandbox (root in a container), no GPU, and no background calls home that would add
# bytes to the count.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PHONE_VIEWPORT = {"width": 390, "height": 844}
PHONE_SCALE = 3

# Written into the temp dir: the project's settings, STATIC_ROOT moved out of the repo.
SETTINGS_MODULE = "bench_pages_settings"
SETTINGS_SOURCE = '''"""Written by bench/pages.py: clinic.settings, STATIC_ROOT in a temp dir."""

import os
from pathlib import Path

from clinic.settings import *  # noqa: F403

STATIC_ROOT = Path(os.environ["BENCH_STATIC_ROOT"])
'''

# Variables that would point the benchmark at shared infrastructure.
DROPPED_ENV_PREFIXES = ("AWS_",)
DROPPED_ENV = {"REDIS_URL", "PUBLIC_MEDIA_URL", "SERVE_PUBLIC_MEDIA", "DJANGO_SETTINGS_MODULE"}

ACCESS_LINE = re.compile(r'"[A-Z]+ (\S+) HTTP/[\d.]+" (\d{3}) ')


# ---------------------------------------------------------------------------------------
# Environment and server


def bench_env(tmp: Path) -> dict[str, str]:
    """The environment of every child: the project's settings pointed into ``tmp``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in DROPPED_ENV and not k.startswith(DROPPED_ENV_PREFIXES)
    }
    env.update(
        DATABASE_URL=os.environ.get("DATABASE_URL") or f"sqlite:///{tmp / 'bench.sqlite3'}",
        MEDIA_ROOT=str(tmp / "media"),
        CACHE_DIR=str(tmp / "cache"),
        BENCH_STATIC_ROOT=str(tmp / "staticfiles"),
        DJANGO_SECRET_KEY="bench-only",
        DJANGO_DEBUG="off",
        # Plain http on loopback: no redirect to https, no secure-only cookies.
        DJANGO_HTTPS="off",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
        # The temp dir first (the settings wrapper), then the project.
        PYTHONPATH=os.pathsep.join([str(tmp), str(ROOT)]),
        # No __pycache__ written into the repository by the children.
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def manage(env: dict[str, str], *args: str) -> None:
    """Run one management command; on failure show its output and stop."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    print(f"  manage.py {' '.join(args)}: {time.perf_counter() - t0:.1f} s", flush=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"manage.py {' '.join(args)} failed ({done.returncode})")


def free_port() -> int:
    for port in PORTS:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {HOST}:{PORTS.start}-{PORTS.stop - 1}")


@contextmanager
def gunicorn(env: dict[str, str], port: int, workers: int, log: Path) -> Iterator[int]:
    """Run gunicorn for the duration of the block; yield the master's pid.

    The master leads its own session (process group), so stopping it by that id reaches
    its workers too and nothing else. The access log goes to a file, not a pipe: a pipe
    nobody drains fills up and blocks the workers.
    """
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "clinic.wsgi:application",
        "--workers",
        str(workers),
        "--bind",
        f"{HOST}:{port}",
        "--access-logfile",
        "-",
        "--error-logfile",
        "-",
        "--no-control-socket",
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_ready(proc, port, log)
        yield proc.pid
    finally:
        stop_group(proc)


def wait_ready(proc: subprocess.Popen, port: int, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited ({proc.returncode}):\n{tail(log)}")
        try:
            if fetch(port, CHEAPEST_PATH, timeout=2)[0] == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    raise SystemExit(f"gunicorn not answering on {HOST}:{port} after {timeout} s:\n{tail(log)}")


def fetch(port: int, path: str, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=HEADERS)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def worker_pids(master: int) -> list[int]:
    """gunicorn's workers: the master's children, from /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, ...
        if int(stat.rsplit(")", 1)[1].split()[1]) == master:
            pids.append(int(entry.name))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of the given processes.

    /proc/<pid>/schedstat counts nanoseconds on a CPU; /proc/<pid>/stat's utime + stime
    (the fallback) counts 10 ms clock ticks, coarse for a 0.6 s window.
    """
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
            continue
        except (OSError, ValueError, IndexError):
            pass
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


# ---------------------------------------------------------------------------------------
# Load generator


@dataclass
class Sample:
    """One target for one round: 200s completed within a fixed window."""

    ok: int = 0  # 200s completed inside the window
    late: int = 0  # answers that arrived after the window closed (checked, not counted)
    seconds: float = 0.0
    errors: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    cache_hits: int = 0
    body_bytes: int = 0
    client_cores: float = 0.0  # CPU of this process (the load generator) / wall time
    server_cores: float = 0.0  # CPU of the gunicorn workers / wall time
    server_cpu: float = 0.0  # CPU seconds of the gunicorn workers during the window

    @property
    def cpu_ms(self) -> float:
        """Workers' CPU per answer: unlike req/s, barely moved by other load on the machine."""
        return 1000 * self.server_cpu / self.answers if self.answers else float("nan")

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def answers(self) -> int:
        return len(self.latencies)


@dataclass
class Target:
    name: str
    path: Callable[[], str]  # called per request, so a target can bust the cache


def load(
    port: int, target: Target, duration: float, connections: int, workers: list[int]
) -> Sample:
    """``connections`` closed-loop clients (threads, one HTTPConnection each) for a window.

    The rate is the 200s *completed inside the window* divided by its length. Requests
    still in flight when it closes are awaited (so the next target starts on an idle
    server) and checked, but not counted: counting them, or stretching the window to the
    last one, would bias against slow pages, whose stragglers weigh more.

    gunicorn's sync worker closes the connection after every response (it expects a
    buffering proxy in front), so http.client reconnects for every request: each request
    pays a TCP handshake on loopback, the same for every target.
    """
    results: list[Sample] = []
    lock = threading.Lock()
    go = threading.Event()
    deadline = [0.0]

    def client() -> None:
        mine = Sample()
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        go.wait()
        while time.perf_counter() < deadline[0]:
            t0 = time.perf_counter()
            try:
                conn.request("GET", target.path(), headers=HEADERS)
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                mine.errors[type(exc).__name__] += 1
                conn.close()
                continue
            t1 = time.perf_counter()
            mine.latencies.append(t1 - t0)
            if resp.status != 200:
                mine.errors[f"HTTP {resp.status}"] += 1
            elif t1 <= deadline[0]:
                mine.ok += 1
            else:
                mine.late += 1
            if resp.getheader("X-Cache") == "hit":
                mine.cache_hits += 1
            mine.body_bytes += len(body)
        conn.close()
        with lock:
            results.append(mine)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    cpu0, server0 = time.process_time(), cpu_seconds(workers)
    start = time.perf_counter()
    deadline[0] = start + duration
    go.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    total = Sample(seconds=duration)
    total.client_cores = (time.process_time() - cpu0) / wall
    total.server_cpu = cpu_seconds(workers) - server0
    total.server_cores = total.server_cpu / wall
    for part in results:
        total.ok += part.ok
        total.late += part.late
        total.errors.update(part.errors)
        total.latencies.extend(part.latencies)
        total.cache_hits += part.cache_hits
        total.body_bytes += part.body_bytes
    return total


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---------------------------------------------------------------------------------------
# Phone weight


@dataclass
class PageWeight:
    path: str
    total: int = 0
    by_type: Counter = field(default_factory=Counter)
    count_by_type: Counter = field(default_factory=Counter)
    document_encoding: str = ""
    document_bytes: int = 0
    document_gzip: int = 0  # what the HTML would weigh gzipped (-6), when sent uncompressed
    failed: list[str] = field(default_factory=list)
    images: dict[str, Any] = field(default_factory=dict)
    scripts: dict[str, int] = field(default_factory=dict)
    # Image responses by file name (renditions are <width>.<format>): count, bytes.
    image_files: Counter = field(default_factory=Counter)
    image_bytes: Counter = field(default_factory=Counter)


# Run in the page after the network is idle: which images the phone actually fetched.
IMAGES_JS = """() => {
  const imgs = [...document.images];
  const fold = window.innerHeight;
  return {
    total: imgs.length,
    loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    above_fold: imgs.filter(i => i.getBoundingClientRect().top < fold).length,
    lazy: imgs.filter(i => i.loading === 'lazy').length,
    page_height: document.documentElement.scrollHeight,
    sources: imgs.filter(i => i.complete && i.naturalWidth > 0)
                 .map(i => i.currentSrc.split('/').pop() + ' ' + i.naturalWidth + 'px'),
  };
}"""


def phone_weights(port: int, paths: list[str]) -> list[PageWeight]:
    from playwright.sync_api import sync_playwright

    weights = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for path in paths:
                # A fresh context per page: an empty HTTP cache, a first visit.
                context = browser.new_context(
                    viewport=PHONE_VIEWPORT,
                    device_scale_factor=PHONE_SCALE,
                    is_mobile=True,
                    has_touch=True,
                )
                try:
                    weights.append(phone_weight(context, f"http://{HOST}:{port}{path}", path))
                finally:
                    context.close()
        finally:
            browser.close()
    return weights


def phone_weight(context: Any, url: str, path: str) -> PageWeight:
    weight = PageWeight(path)
    page = context.new_page()
    page.set_default_timeout(30000)
    cdp = context.new_cdp_session(page)
    requests: dict[str, dict[str, Any]] = {}

    def on_response(event: dict) -> None:
        response = event["response"]
        headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
        requests[event["requestId"]] = {
            "type": event.get("type", "Other"),
            "url": response["url"],
            "encoding": headers.get("content-encoding", "none"),
        }

    def on_finished(event: dict) -> None:
        info = requests.get(event["requestId"], {"type": "Other", "url": "?", "encoding": ""})
        size = int(event["encodedDataLength"])
        weight.total += size
        weight.by_type[info["type"]] += size
        weight.count_by_type[info["type"]] += 1
        if info["type"] == "Document":
            weight.document_bytes = size
            weight.document_encoding = info["encoding"]
        if info["type"] == "Script":
            weight.scripts[info["url"].rsplit("/", 1)[-1]] = size
        if info["type"] == "Image":
            name = info["url"].rsplit("/", 1)[-1]
            weight.image_files[name] += 1
            weight.image_bytes[name] += size

    def on_failed(event: dict) -> None:
        info = requests.get(event["requestId"], {"url": event["requestId"]})
        weight.failed.append(f"{info['url']}: {event.get('errorText', '')}")

    cdp.on("Network.responseReceived", on_response)
    cdp.on("Network.loadingFinished", on_finished)
    cdp.on("Network.loadingFailed", on_failed)
    cdp.send("Network.enable")
    page.goto(url, wait_until="networkidle")
    # Let late CDP events (dispatched while Playwright waits) arrive.
    page.wait_for_timeout(500)
    weight.images = page.evaluate(IMAGES_JS)
    return weight


# ---------------------------------------------------------------------------------------
# Report


@dataclass
class Verdict:
    name: str
    measured: str
    target: str
    ok: bool | None  # None: not measured

    @property
    def result(self) -> str:
        return {True: "PASS", False: "FAIL", None: "SKIP"}[self.ok]


def kb(n: float) -> str:
    return f"{n / KB:.1f} kB"


# ---------------------------------------------------------------------------------------
# Main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # Many short rounds rather than a few long ones: a round's paired ratio is only as good
    # as the machine's load is steady during the round, and a shared machine is not.
    parser.add_argument("--rounds", type=int, default=15, help="alternating rounds (>= 1)")
    parser.add_argument("--duration", type=float, default=0.6, help="seconds per target")
    parser.add_argument("--connections", type=int, default=8, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--count", type=int, default=30, help="demo cases to seed")
    parser.add_argument("--quick", action="store_true", help="1 short round (smoke test)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    parser.add_argument("--no-browser", action="store_true", help="skip the phone weight")
    parser.add_argument(
        "--workdir", type=Path, help="keep the temp files here (reused: seeding is idempotent)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 1, 0.5
    warmup = min(1.0, args.duration / 2)

    # SIGTERM takes the same path as Ctrl-C, so the finally blocks stop gunicorn.
    signal.signal(signal.SIGTERM, interrupted)

    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return run(args, args.workdir.resolve(), warmup)
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        return run(args, Path(tmp), warmup)


def run(args: argparse.Namespace, tmp: Path, warmup: float) -> int:
    (tmp / f"{SETTINGS_MODULE}.py").write_text(SETTINGS_SOURCE)
    env = bench_env(tmp)
    static_root = Path(env["BENCH_STATIC_ROOT"])
    log = tmp / "gunicorn.log"
    log.write_bytes(b"")  # a reused --workdir: count this run's answers only
    print(f"Work dir {tmp}; database {env['DATABASE_URL'].split('@')[-1]}")
    if os.environ.get("DATABASE_URL"):
        print("  DATABASE_URL is set: that database is migrated and seeded with demo cases.")
    print(f"Setup ({os.cpu_count()} CPUs):", flush=True)
    manage(env, "migrate", "--noinput")
    manage(env, "seed_demo", "--count", str(args.count))
    manage(env, "collectstatic", "--noinput")
    port = free_port()

    # 1. Capture the pages' bytes. WhiteNoise indexes STATIC_ROOT when a worker starts
    # (autorefresh is off without DEBUG), so the copies must exist before the measured
    # server starts: a first short-lived server renders them.
    with gunicorn(env, port, args.workers, log):
        status, _, body = fetch(port, "/api/cases/")
        if status != 200 or not json.loads(body)["results"]:
            raise SystemExit(f"/api/cases/ answered {status} with no case:\n{tail(log)}")
        case_path = urlsplit(json.loads(body)["results"][0]["url"]).path
        pages: dict[str, bytes] = {}
        for name, path in (("list", LIST_PATH), ("case", case_path)):
            status, _, html = fetch(port, path)
            if status != 200:
                raise SystemExit(f"{path} answered {status}:\n{tail(log)}")
            pages[name] = html
    (static_root / "bench").mkdir(parents=True, exist_ok=True)
    for name, html in pages.items():
        (static_root / "bench" / f"{name}.html").write_bytes(html)

    # A token per run keeps a reused --workdir's cache from answering; next() on a count
    # is atomic under the GIL.
    bust = itertools.count()
    token = secrets.token_hex(4)
    targets = [
        Target("list", lambda: LIST_PATH),
        Target("case", lambda: case_path),
        Target("cheapest", lambda: CHEAPEST_PATH),
        Target("static-list", lambda: "/static/bench/list.html"),
        Target("static-case", lambda: "/static/bench/case.html"),
    ]
    uncached = [
        Target("list", lambda: f"{LIST_PATH}?_={token}{next(bust)}"),
        Target("case", lambda: f"{case_path}?_={token}{next(bust)}"),
        *targets[2:],
    ]
    names = [t.name for t in targets]
    rounds: list[dict[str, Sample]] = []
    orders: list[list[str]] = []
    weights: list[PageWeight] = []
    browser_error = ""
    checks: list[str] = []

    with gunicorn(env, port, args.workers, log) as master:
        workers = worker_pids(master)
        print(
            f"gunicorn on {HOST}:{port}: master {master}, workers {workers}; case page {case_path}",
            flush=True,
        )
        # Same bytes from the view and from the static copy?
        for name, path in (("list", LIST_PATH), ("case", case_path)):
            _, headers, html = fetch(port, path)
            _, _, copy = fetch(port, f"/static/bench/{name}.html")
            same = html == pages[name] == copy
            checks.append(
                f"{name}: view {len(html)} B (X-Cache {headers.get('x-cache', 'miss')}), "
                f"static copy {len(copy)} B, identical: {'yes' if same else 'NO'}"
            )
        checks.append(f"load average before the rounds: {loadavg()} ({os.cpu_count()} CPUs)")
        # Warm-up: imports, template loading and the page cache in both workers.
        for target in targets:
            load(port, target, warmup, args.connections, workers)

        for r in range(args.rounds):
            order = targets[r % len(targets) :] + targets[: r % len(targets)]
            orders.append([t.name for t in order])
            rounds.append(
                {t.name: load(port, t, args.duration, args.connections, workers) for t in order}
            )
            print(f"  round {r + 1}/{args.rounds} done", flush=True)
        # Last, because each miss writes an entry and the file cache culls a third of its
        # entries once it holds 300: it may evict the warm pages.
        # A longer window: a miss takes far longer than a hit, and a short window would
        # hold only a handful of them.
        window = args.duration if args.quick else max(2.0, args.duration)
        busted = {t.name: load(port, t, window, args.connections, workers) for t in uncached}
        print("  uncached round done", flush=True)
        checks.append(f"load average after the rounds: {loadavg()} (other processes included)")

        if not args.no_browser:
            if not Path(CHROMIUM).exists():
                browser_error = f"Chromium not found at {CHROMIUM}"
            else:
                try:
                    weights = phone_weights(port, [LIST_PATH, case_path])
                except Exception as exc:  # report, do not lose the load results
                    browser_error = f"{type(exc).__name__}: {exc}"

    # Server-side view of the same traffic: every status in the access log.
    statuses: Counter = Counter()
    for line in log.read_text(errors="replace").splitlines():
        match = ACCESS_LINE.search(line)
        if match and match.group(2) != "200":
            statuses[f"{match.group(2)} {match.group(1).split('?')[0]}"] += 1

    for w in weights:
        if w.document_encoding == "none":
            html = pages["list" if w.path == LIST_PATH else "case"]
            w.document_gzip = len(gzip.compress(html, 6))
    return report(args, names, orders, rounds, busted, weights, browser_error, checks, statuses)


def report(
    args: argparse.Namespace,
    names: list[str],
    orders: list[list[str]],
    rounds: list[dict[str, Sample]],
    busted: dict[str, Sample],
    weights: list[PageWeight],
    browser_error: str,
    checks: list[str],
    statuses: Counter,
) -> int:
    pairs = [
        ("list/cheapest", "list", "cheapest"),
        ("case/cheapest", "case", "cheapest"),
        ("list/static", "list", "static-list"),
        ("case/static", "case", "static-case"),
        ("static-list/cheapest", "static-list", "cheapest"),
    ]

    def ratio(samples: dict[str, Sample], a: str, b: str) -> float:
        return samples[a].rps / samples[b].rps if samples[b].rps else float("nan")

    def cpu_ratio(samples: dict[str, Sample], a: str, b: str) -> float:
        """The req/s ratio the workers' CPU per answer predicts for a saturated server."""
        return samples[b].cpu_ms / samples[a].cpu_ms

    def spread(values: list[float]) -> str:
        """Interquartile range: how much to trust a median taken on a busy machine."""
        if len(values) < 4:
            return "n/a"
        q1, _, q3 = statistics.quantiles(values, n=4)
        return f"{q1:.2f}-{q3:.2f}"

    print()
    print("Checks:")
    for line in checks:
        print(f"  {line}")

    print()
    print(
        f"Requests/second per round ({args.connections} connections, {args.duration:g} s "
        f"per target, gunicorn {args.workers} sync workers, warm page cache):"
    )
    rows = []
    for i, (order, samples) in enumerate(zip(orders, rounds, strict=True)):
        rows.append(
            [f"{i + 1} ({order[0]} first)"]
            + [f"{samples[n].rps:.0f}" for n in names]
            + [f"{ratio(samples, a, b):.2f}" for _, a, b in pairs]
        )
    rows.append(
        ["uncached"]
        + [f"{busted[n].rps:.0f}" for n in names]
        + [f"{ratio(busted, a, b):.2f}" for _, a, b in pairs]
    )
    print_table(rows, ["round", *names, *(p for p, _, _ in pairs)])

    print()
    print("Per target over all warm rounds (and the uncached round's list and case):")
    rows = []
    for label, samples in [(n, [r[n] for r in rounds]) for n in names] + [
        ("list uncached", [busted["list"]]),
        ("case uncached", [busted["case"]]),
    ]:
        lat = [x for s in samples for x in s.latencies]
        ok = sum(s.ok + s.late for s in samples)
        errors = sum((s.errors for s in samples), Counter())
        hits = sum(s.cache_hits for s in samples)
        rows.append(
            [
                label,
                f"{statistics.median(s.rps for s in samples):.0f}",
                f"{quantile(lat, 0.5) * 1000:.1f}",
                f"{quantile(lat, 0.95) * 1000:.1f}",
                f"{sum(s.body_bytes for s in samples) / max(1, len(lat)) / KB:.1f}",
                f"{100 * hits / max(1, len(lat)):.0f}%" if "static" not in label else "-",
                f"{statistics.median(s.server_cores for s in samples):.2f}",
                f"{statistics.median(s.cpu_ms for s in samples):.2f}",
                f"{statistics.median(s.client_cores for s in samples):.2f}",
                str(ok),
                ", ".join(f"{k} x{v}" for k, v in errors.items()) or "0",
            ]
        )
    print_table(
        rows,
        [
            "target",
            "median req/s",
            "p50 ms",
            "p95 ms",
            "body kB",
            "cache hit",
            "server CPUs",
            "CPU ms/req",
            "client CPUs",
            "200s",
            "errors",
        ],
    )
    print(
        "  server CPUs / client CPUs: cores used by the gunicorn workers / by this load "
        f"generator during the target's runs ({os.cpu_count()} on this machine);\n"
        "  CPU ms/req: the workers' CPU time per answer."
    )
    if statuses:
        print("  Non-200 answers in gunicorn's access log (warm-up and checks included):")
        for key, n in statuses.most_common():
            print(f"    {key}: {n}")
    else:
        print("  gunicorn's access log: every answer was 200.")

    paired = {label: [ratio(r, a, b) for r in rounds] for label, a, b in pairs}
    medians = {label: statistics.median(values) for label, values in paired.items()}
    cpu_medians = {
        label: statistics.median(cpu_ratio(r, a, b) for r in rounds) for label, a, b in pairs
    }
    verdicts = [
        Verdict(
            f"{page} page / cheapest view, req/s (median of {len(rounds)} paired)",
            f"{medians[f'{page}/cheapest']:.2f}x (IQR {spread(paired[f'{page}/cheapest'])})",
            f">= {TARGET_PAGE_RATIO:.2f}x",
            medians[f"{page}/cheapest"] >= TARGET_PAGE_RATIO,
        )
        for page in ("list", "case")
    ]

    if weights:
        print()
        print(
            f"Phone ({PHONE_VIEWPORT['width']}x{PHONE_VIEWPORT['height']} @{PHONE_SCALE}x, "
            "fresh cache, until network idle), bytes on the wire:"
        )
        types = sorted({t for w in weights for t in w.by_type})
        rows = [
            [w.path] + [f"{kb(w.by_type[t])} ({w.count_by_type[t]})" for t in types] + [kb(w.total)]
            for w in weights
        ]
        print_table(rows, ["page", *types, "total"])
        for w in weights:
            img = w.images
            gz = f", gzip would be {kb(w.document_gzip)}" if w.document_gzip else ""
            print(
                f"  {w.path}: document {kb(w.document_bytes)} "
                f"(Content-Encoding: {w.document_encoding}{gz}); images loaded "
                f"{img.get('loaded')} of {img.get('total')} ({img.get('above_fold')} start "
                f"above the fold, {img.get('lazy')} lazy; page {img.get('page_height')} CSS px "
                f"tall); scripts {w.scripts}"
            )
            files = ", ".join(
                f"{name} x{n} {kb(w.image_bytes[name])}"
                for name, n in sorted(w.image_files.items())
            )
            print(f"    images fetched: {files}")
            for failed in w.failed:
                print(f"    failed: {failed}")
        for w in weights:
            verdicts.append(
                Verdict(
                    f"phone initial view {w.path}",
                    kb(w.total),
                    f"<= {TARGET_PHONE_KB:.0f} kB",
                    w.total <= TARGET_PHONE_KB * KB,
                )
            )
    else:
        reason = browser_error or "--no-browser"
        for page in ("list", "case"):
            verdicts.append(Verdict(f"phone initial view ({page})", reason, "<= 300 kB", None))

    raw = SLIDER_JS.read_bytes()
    verdicts.append(
        Verdict(
            f"slider JS {SLIDER_JS.relative_to(ROOT)} (raw; gzip {kb(len(gzip.compress(raw, 9)))})",
            kb(len(raw)),
            f"<= {TARGET_SLIDER_KB:.0f} kB",
            len(raw) <= TARGET_SLIDER_KB * KB,
        )
    )

    print()
    print("All ratios (page req/s / anchor req/s; targets only on the first two):")
    print_table(
        [
            [
                label,
                f"{medians[label]:.2f}x",
                spread(paired[label]),
                f"{cpu_medians[label]:.2f}x",
                f"{ratio(busted, x, y):.2f}x",
                f"{cpu_ratio(busted, x, y):.2f}x",
            ]
            for label, x, y in pairs
        ],
        ["ratio", "warm median", "warm IQR", "warm by CPU", "uncached", "uncached by CPU"],
    )
    print(
        "  warm: median of the paired per-round ratios (IQR: their interquartile range). "
        "by CPU: the ratio the\n  workers' CPU time per answer predicts for a server with "
        "the CPUs to itself (anchor ms / page ms),\n  much less moved by other load on the "
        "machine than req/s. uncached: the one cache-busting round."
    )

    print()
    print_table(
        [[v.name, v.measured, v.target, v.result] for v in verdicts],
        ["target", "measured", "target", "result"],
    )
    failed = [v for v in verdicts if v.ok is not True]
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
