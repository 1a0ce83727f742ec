#!/usr/bin/env python
"""Load test: public reads under 64 connections and concurrent 15 MB uploads, on gunicorn.

Usage::

    .venv/bin/python bench/load.py            # 30 s of reads, then 20 uploads of 15 MB
    .venv/bin/python bench/load.py --quick    # smoke test: 5 s of reads, 4 uploads of 2 MB
    .venv/bin/python bench/load.py --strict   # exit 1 when a check fails

Targets (from the hardening issue):

* **Read load**: the gallery list, one case page and the JSON API under 64 concurrent
  keep-alive connections for 30 s: 0 errors (any answer other than 200, or any connection
  error or timeout). Requests per second (overall and per URL) and p50/p95/p99 latencies
  are printed, with the CPU used by the server and by this load generator, so a reader can
  tell whether the client was the bottleneck.
* **Uploads**: 20 concurrent uploads of distinct ~15 MB JPEGs by a logged-in staff user,
  through the same endpoint and the same request as ``static/gallery/upload.js`` (one file
  per multipart POST, CSRF header): 0 lost, i.e. every upload answered 201 and, read back
  after the server is stopped, every case holds exactly one photo whose recorded SHA-256
  *and* whose stored original's SHA-256 equal those of the file sent.

The server log is also checked: a worker timeout, a replaced worker, a traceback or
SQLite's "database is locked" is a failure even when every client saw a success.

How it measures:

* The read client is one asyncio loop speaking HTTP/1.1 over raw sockets (a browser's
  Accept and Accept-Encoding: gzip, so the page cache and GZipMiddleware do their real
  work), not threads with http.client: on 2 CPUs the client must stay small, and its CPU,
  the server's and that of every other process on the machine (/proc/stat) are printed.
  Clients connect over 0.5 s before the clock starts, as browsers arrive: connections
  opened in the same millisecond all go to whichever worker the scheduler wakes first,
  and keep-alive would keep that imbalance for the whole phase. Answers per worker pid
  (from the access log) show how the load spread.
* A phase starts only when every worker has answered a request (bursts of /healthz until
  each worker pid appears in the access log): workers import Django after the fork, and
  one still importing would get no connection.
* A 3 s warm-up (1 s with --quick) fills the page cache in every worker; its answers are
  checked for errors too but not rated.
* Photos are generated before the server starts: a gradient blended with seeded noise,
  JPEG quality 100, 5000 x 3750, the noise weight tuned so each is ~15 MB; distinct seeds,
  distinct SHA-256s. Draft cases (one per upload, on demo patients' active consents,
  owned by the demo photographer) are created with ``manage.py shell``. The uploads log in
  through /staff/login/ (CSRF token from the form), open the case page for the upload
  form's token, and all start at once on already-open connections.

gunicorn configuration (``-k gthread -w 4 --threads 4 --backlog 2048 --timeout 120``):

* *gthread*, because the sync worker closes the connection after every response and serves
  one connection at a time: 64 held keep-alive connections would need 64 processes. A
  gthread worker parks idle keep-alive connections in its poller (up to
  ``worker_connections``, 1000) and hands each request to a thread.
* *4 processes x 4 threads* on 2 CPUs: Django is CPU-bound under the GIL, so one process
  can never use more than one CPU; two processes per CPU keep both CPUs busy while one
  process waits on a file-cache read, SQLite or a socket, and 4 threads per process
  overlap those waits. More threads per process only queue on its GIL; more processes
  cost ~65 MB each at rest and, during uploads, one decoded photo per busy thread. 16
  threads also bound how many uploads render at once (20 sent: 4 wait for a thread).
  Measured on a 2-CPU machine shared with other jobs, 2 x 8 and 4 x 4 both gave 0 errors
  and the same worker CPU per answer within the noise (2 x 8 uses half the memory);
  8 x 2 and 4 x 1 cost more CPU per answer. ``--workers`` and ``--threads`` change it.
* *--backlog 2048* (the kernel caps it at net.core.somaxconn): the burst of connections at
  the start of each phase waits in the accept queue, never refused.
* *--timeout 120*: gthread's heartbeat runs in the worker's main loop, not in the request
  threads, so this catches a worker whose loop is stuck, not a slow request; a 15 MB upload
  that validates, stores and renders nine renditions inline (the tasks backend is
  ``ImmediateBackend``) must never be killed mid-write.

Isolation, as ``bench/pages.py``: the database (a temporary SQLite file, unless
DATABASE_URL is set, which is then honoured and *is migrated and seeded*), MEDIA_ROOT,
the file cache, STATIC_ROOT and the temporary files of uploads all live in a temporary
directory. AWS_* and REDIS_URL are dropped. The server runs with debug off, plain HTTP
(DJANGO_HTTPS=off), the login lock-out off (AXES_ENABLED=off) and a settings module,
written into the temp dir, that moves STATIC_ROOT out of the repository. gunicorn binds
127.0.0.1 only (a free port in 18800-18899) and is stopped by its process group id before
the script returns; the whole run is bounded by ``--budget`` seconds.

The exit status is 0 (it is a benchmark) unless ``--strict`` is given and a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import io
import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import cast
from urllib.parse import urlencode, urlsplit

from common import interrupted, loadavg, print_table, tail

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent  # the Django project root (holds manage.py)
PY = sys.executable

HOST = "127.0.0.1"  # loopback only, never a routable address
PORTS = range(18800, 18900)

DEMO_USER = "demo"
DEMO_PASSWORD = "demo-gallery-2026"

# The upload limits the server enforces (clinic/settings.py): a photo must stay under both.
MAX_UPLOAD_BYTES = 40 * 1024 * 1024
MAX_UPLOAD_PIXELS = 60_000_000
MB = 1_000_000  # upload sizes and throughput in decimal megabytes

# What a browser sends: the page cache keys on Accept, and gzip is part of the real cost.
HTML_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
JSON_ACCEPT = "application/json"
ACCEPT_ENCODING = "gzip, deflate, br, zstd"

RAMP = 0.5  # seconds over which the read clients connect, before the clock starts

SETTINGS_MODULE = "bench_load_settings"
SETTINGS_SOURCE = '''"""Written by bench/load.py: clinic.settings, STATIC_ROOT in a temp dir."""

import os
from pathlib import Path

from clinic.settings import *  # noqa: F403

STATIC_ROOT = Path(os.environ["BENCH_STATIC_ROOT"])
'''

# Variables that would point the benchmark at shared infrastructure.
DROPPED_ENV_PREFIXES = ("AWS_",)
DROPPED_ENV = {"REDIS_URL", "PUBLIC_MEDIA_URL", "SERVE_PUBLIC_MEDIA", "DJANGO_SETTINGS_MODULE"}

# The access log carries the worker's pid and the server-side time, so the log alone shows
# how requests spread over workers and how long the server itself took.
ACCESS_FORMAT = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms %(p)s'
ACCESS_LINE = re.compile(r'"([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3}) \S+ (\d+)ms <(\d+)>')

# Lines of the server's own log that are failures whatever the client saw. Once the
# script starts stopping gunicorn, "was sent SIGTERM" and "Worker exiting" are expected:
# only the patterns in SHUTDOWN_PROBLEMS count from then on.
LOG_PROBLEMS = {
    "worker timeout": re.compile(r"WORKER TIMEOUT"),
    "worker killed or exited": re.compile(r"was sent (SIG|code)|Worker exit"),
    "worker booted after the start": re.compile(r"Booting worker"),
    "database is locked": re.compile(r"database is locked"),
    "traceback": re.compile(r"^Traceback \(most recent call last\)"),
    "gunicorn request error": re.compile(r"Error handling request"),
    "upload failed (503)": re.compile(r"Upload failed for case"),
    "renditions failed": re.compile(r"Could not build renditions"),
}
SHUTDOWN_PROBLEMS = ("worker timeout", "database is locked", "traceback")

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
UPLOAD_URL = re.compile(r'id="upload" data-url="([^"]+)"')


class BudgetExceeded(BaseException):
    """The run took longer than --budget; BaseException so no ``except Exception`` eats it."""


# ---------------------------------------------------------------------------------------
# Environment and server


def bench_env(tmp: Path) -> dict[str, str]:
    """The environment of every child: the project's settings pointed into ``tmp``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in DROPPED_ENV and not k.startswith(DROPPED_ENV_PREFIXES)
    }
    (tmp / "tmp").mkdir(exist_ok=True)
    env.update(
        DATABASE_URL=os.environ.get("DATABASE_URL") or f"sqlite:///{tmp / 'bench.sqlite3'}",
        MEDIA_ROOT=str(tmp / "media"),
        CACHE_DIR=str(tmp / "cache"),
        BENCH_STATIC_ROOT=str(tmp / "staticfiles"),
        # Uploads over 5 MB are spooled to temporary files: keep them in the work dir.
        TMPDIR=str(tmp / "tmp"),
        DJANGO_SECRET_KEY="bench-only",
        DJANGO_DEBUG="off",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        # Plain http on loopback: no SSL redirect, no secure-only cookies.
        DJANGO_HTTPS="off",
        # One login per run is no brute force, but a lock-out must never skew a rerun.
        AXES_ENABLED="off",
        DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
        # The temp dir first (the settings wrapper), then the project.
        PYTHONPATH=os.pathsep.join([str(tmp), str(ROOT)]),
        # No __pycache__ written into the repository by the children.
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    """Run one management command and return its stdout; on failure show it and stop."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [PY, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    label = args[0] if args[0] == "shell" else " ".join(args)
    print(f"  manage.py {label}: {time.perf_counter() - t0:.1f} s", flush=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"manage.py {label} failed ({done.returncode})")
    return done.stdout


def shell_json(env: dict[str, str], code: str) -> object:
    """Run Python in the project (``manage.py shell -c``); its last line of output is JSON."""
    out = manage(env, "shell", "-c", code)
    return json.loads(out.strip().splitlines()[-1])


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
def gunicorn(
    env: dict[str, str], port: int, workers: int, threads: int, tmp: Path
) -> Iterator[int]:
    """Run gunicorn for the duration of the block; yield the master's pid.

    The master leads its own session (process group), so stopping it by that id reaches
    its workers too and nothing else. Logs go to files, not pipes: a pipe nobody drains
    fills up and blocks the workers.
    """
    cmd = [
        PY,
        "-m",
        "gunicorn",
        "clinic.wsgi:application",
        "--worker-class",
        "gthread",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--backlog",
        "2048",
        "--timeout",
        "120",
        "--bind",
        f"{HOST}:{port}",
        "--access-logfile",
        str(tmp / "access.log"),
        "--access-logformat",
        ACCESS_FORMAT,
        "--error-logfile",
        "-",
        # Its default path under $HOME would be shared with any other gunicorn.
        "--no-control-socket",
    ]
    with (tmp / "server.log").open("ab") as out:
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
        wait_ready(proc, port, tmp, workers)
        yield proc.pid
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen) -> None:
    def signal_group(sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    if proc.poll() is None:
        signal_group(signal.SIGTERM)  # graceful: the master stops its workers
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            signal_group(signal.SIGKILL)
            proc.wait()
    # A worker that outlived its master would still be in the group.
    signal_group(signal.SIGKILL)


def wait_ready(proc: subprocess.Popen, port: int, tmp: Path, workers: int) -> None:
    """Wait until *every* worker has answered a request, not merely the first one.

    Workers import Django after the fork; one still importing when a phase opens its 64
    keep-alive connections would get none of them and sit idle for the whole phase. Bursts
    of fresh connections to /healthz (which also runs SELECT 1) reach whichever workers
    accept; the access log's pid field says which have answered.
    """
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited ({proc.returncode}):\n{tail(tmp / 'server.log')}")
        pids = worker_pids(proc.pid)
        if len(pids) >= workers:
            with ThreadPoolExecutor(max_workers=16) as pool:
                list(pool.map(lambda _: quiet_get(port, "/healthz"), range(16)))
            answered = {
                int(m.group(5))
                for m in map(ACCESS_LINE.search, (tmp / "access.log").read_text().splitlines())
                if m
            }
            if set(pids) <= answered:
                return
        time.sleep(0.2)
    raise SystemExit(
        f"gunicorn's {workers} workers not all answering on {HOST}:{port} after 90 s:\n"
        f"{tail(tmp / 'server.log')}"
    )


def quiet_get(port: int, path: str) -> int:
    try:
        return simple_get(port, path, timeout=5)[0]
    except (OSError, http.client.HTTPException):
        return 0


def simple_get(port: int, path: str, timeout: float = 30) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": JSON_ACCEPT})
        resp = conn.getresponse()
        return resp.status, resp.read()
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
    return sorted(pids)


def cpu_seconds(pid: int) -> float:
    """CPU time of one process, all its threads.

    /proc/<pid>/stat's utime + stime (10 ms ticks; plenty for phases of seconds), not
    /proc/<pid>/schedstat, which counts the main thread only: a gthread worker's requests
    run in its other threads.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def machine_cpu() -> tuple[float, float, float]:
    """Seconds the whole machine spent busy, stolen by the hypervisor and in iowait.

    On a shared machine, the CPU other processes took during a phase is what explains a
    low rate; the report shows it next to the server's and the client's own.
    """
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, iowait, irq, softirq, steal = (int(x) for x in first[:8])
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick, iowait / tick


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class ServerStats:
    wall: float = 0.0
    cores: float = 0.0  # CPU seconds of the workers / wall seconds
    per_worker_cores: dict[int, float] = field(default_factory=dict)
    workers_replaced: list[int] = field(default_factory=list)
    peak_total_mb: float = 0.0
    peak_worker_mb: float = 0.0
    client_cores: float = 0.0  # this process: the load generator
    machine_busy_cores: float = 0.0  # every process on the machine, from /proc/stat
    machine_steal_cores: float = 0.0  # taken by the hypervisor from this VM
    machine_iowait_cores: float = 0.0

    @property
    def others_cores(self) -> float:
        """CPU used by processes that are neither this server nor this client."""
        return max(0.0, self.machine_busy_cores - self.cores - self.client_cores)

    def machine_line(self) -> str:
        return (
            f"machine {self.machine_busy_cores:.2f} of {os.cpu_count()} CPUs busy: "
            f"server {self.cores:.2f}, client {self.client_cores:.2f}, other processes "
            f"{self.others_cores:.2f}; iowait {self.machine_iowait_cores:.2f}, "
            f"steal {self.machine_steal_cores:.2f}"
        )


class ServerWatch:
    """CPU per worker over a phase, and peak memory sampled every 0.2 s during it.

    A change in the set of worker pids means gunicorn replaced a worker (a crash or a
    timeout): it is reported, never averaged away.
    """

    def __init__(self, master: int) -> None:
        self.master = master
        self.pids = worker_pids(master)
        self.cpu0 = {pid: cpu_seconds(pid) for pid in self.pids}
        self.client0 = time.process_time()
        self.machine0 = machine_cpu()
        self.wall0 = time.perf_counter()
        self.peak_total_mb = 0.0
        self.peak_worker_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            sizes = [rss_mb(pid) for pid in worker_pids(self.master)]
            self.peak_total_mb = max(self.peak_total_mb, sum(sizes))
            self.peak_worker_mb = max(self.peak_worker_mb, max(sizes, default=0.0))

    def stop(self) -> ServerStats:
        self._stop.set()
        self._thread.join()
        wall = time.perf_counter() - self.wall0
        now = worker_pids(self.master)
        per_worker = {pid: cpu_seconds(pid) - self.cpu0[pid] for pid in self.pids}
        busy, steal, iowait = (b - a for a, b in zip(self.machine0, machine_cpu(), strict=True))
        return ServerStats(
            wall=wall,
            client_cores=(time.process_time() - self.client0) / wall,
            machine_busy_cores=busy / wall,
            machine_steal_cores=steal / wall,
            machine_iowait_cores=iowait / wall,
            cores=sum(per_worker.values()) / wall,
            per_worker_cores={p: per_worker[p] / wall for p in self.pids},
            workers_replaced=sorted(set(now) ^ set(self.pids)),
            peak_total_mb=self.peak_total_mb,
            peak_worker_mb=self.peak_worker_mb,
        )


# ---------------------------------------------------------------------------------------
# Phase 1: read load (asyncio, raw HTTP/1.1 keep-alive)


@dataclass
class UrlStats:
    path: str
    ok: int = 0  # 200s completed inside the window (the req/s numerator)
    late: int = 0  # answers completed after the window closed (checked, not rated)
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    cache_hits: int = 0
    body_bytes: int = 0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass
class ReadResult:
    duration: float
    connections: int
    urls: dict[str, UrlStats]
    reconnects: int = 0
    server: ServerStats = field(default_factory=ServerStats)

    @property
    def ok(self) -> int:
        return sum(u.ok for u in self.urls.values())

    @property
    def errors(self) -> Counter:
        return sum((u.errors for u in self.urls.values()), Counter())

    @property
    def latencies(self) -> list[float]:
        return [x for u in self.urls.values() for x in u.latencies]


def request_bytes(port: int, path: str) -> bytes:
    accept = JSON_ACCEPT if path.startswith("/api/") else HTML_ACCEPT
    return (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: {accept}\r\n"
        f"Accept-Encoding: {ACCEPT_ENCODING}\r\nUser-Agent: bench-load\r\n"
        "Connection: keep-alive\r\n\r\n"
    ).encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], int]:
    """One HTTP/1.1 response: status, headers (lower-case names), body length."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if b"content-length" in headers:
        size = int(headers[b"content-length"])
        await reader.readexactly(size)
    elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        size = 0
        while True:
            chunk = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(chunk + 2)  # the data and its CRLF
            size += chunk
            if chunk == 0:
                break
    else:
        size = len(await reader.read())  # delimited by the close
        headers[b"connection"] = b"close"
    return status, headers, size


async def read_load(
    port: int, paths: list[str], duration: float, connections: int, timeout: float = 30
) -> ReadResult:
    """``connections`` closed-loop keep-alive clients for ``duration`` seconds.

    One event loop with raw sockets rather than threads with http.client: the client must
    not be the bottleneck on a 2-CPU machine it shares with the server, and its own CPU
    use is measured and printed. Client i sends paths[(i + k) % len(paths)] as its k-th
    request, so every URL gets the same share. Requests still in flight when the window
    closes are awaited and checked but not rated: counting them, or stretching the window
    to the last one, would bias against slow URLs.
    """
    stats = {p: UrlStats(p) for p in paths}
    wire = {p: request_bytes(port, p) for p in paths}
    result = ReadResult(duration, connections, stats)
    loop = asyncio.get_running_loop()
    go = asyncio.Event()
    deadline = 0.0

    async def client(i: int) -> None:
        reconnects = 0
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            # Connected before the clock starts: connection set-up is not request latency.
            # Staggered over RAMP seconds, as browsers arrive: 64 connections in the same
            # millisecond are accepted by whichever worker the scheduler wakes first, and
            # keep-alive keeps that imbalance for the whole phase.
            await asyncio.sleep(RAMP * i / connections)
            conn = await asyncio.open_connection(HOST, port)
        except OSError as exc:
            stats[paths[i % len(paths)]].errors[f"connect {type(exc).__name__}"] += 1
        await go.wait()
        k = 0
        while loop.time() < deadline:
            path = paths[(i + k) % len(paths)]
            k += 1
            s = stats[path]
            t0 = loop.time()
            try:
                async with asyncio.timeout(timeout):
                    if conn is None:
                        conn = await asyncio.open_connection(HOST, port)
                        reconnects += 1
                    reader, writer = conn
                    writer.write(wire[path])
                    status, headers, size = await read_response(reader)
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
                s.errors[type(exc).__name__] += 1
                if conn is not None:
                    conn[1].close()
                conn = None
                await asyncio.sleep(0.05)  # a dead server must not become a busy loop
                continue
            t1 = loop.time()
            s.latencies.append(t1 - t0)
            s.statuses[status] += 1
            s.body_bytes += size
            if headers.get(b"x-cache") == b"hit":
                s.cache_hits += 1
            if status != 200:
                s.errors[f"HTTP {status}"] += 1
            elif t1 <= deadline:
                s.ok += 1
            else:
                s.late += 1
            if headers.get(b"connection", b"").lower() == b"close":
                conn[1].close()
                conn = None  # the server ended keep-alive; counted as a reconnect
        if conn is not None:
            conn[1].close()
        result.reconnects += reconnects

    tasks = [asyncio.create_task(client(i)) for i in range(connections)]
    # Every client connected; well inside gunicorn's 2 s keep-alive, which also bounds how
    # long an accepted connection may wait for its first request.
    await asyncio.sleep(RAMP + 0.2)
    deadline = loop.time() + duration
    go.set()
    await asyncio.gather(*tasks)
    return result


def run_read_load(
    port: int, master: int, paths: list[str], duration: float, connections: int
) -> ReadResult:
    watch = ServerWatch(master)
    result = asyncio.run(read_load(port, paths, duration, connections))
    result.server = watch.stop()
    return result


# ---------------------------------------------------------------------------------------
# Phase 2: uploads


@dataclass
class SentPhoto:
    name: str
    data: bytes
    sha256: str
    width: int
    height: int


def make_photos(count: int, target_bytes: int) -> list[SentPhoto]:
    """``count`` distinct high-entropy JPEGs (quality 100) of about ``target_bytes`` each.

    Pure noise at quality 100 is ~2 bytes per pixel (37 MB at 5000x3750); a gradient
    blended with noise is tuned to ~0.8 bytes per pixel, which puts 15 MB at 5000x3750
    (19 MP), a realistic camera size well under the 40 MB / 60 MP limits. The blend's
    noise weight is found by bisection on a small tile, whose bytes per pixel match a full
    image's within a few percent. Each photo has its own noise seed, so SHA-256s differ.
    """
    from PIL import Image

    pixels = min(target_bytes / 0.8, 5000 * 3750)
    width = round(math.sqrt(pixels * 4 / 3))
    height = round(width * 3 / 4)
    target_bpp = target_bytes / (width * height)

    def blended(w: int, h: int, alpha: float, seed: int) -> Image.Image:
        noise = Image.frombytes("RGB", (w, h), random.Random(seed).randbytes(w * h * 3))
        base = Image.linear_gradient("L").resize((w, h)).convert("RGB")
        return Image.blend(base, noise, alpha)

    def encode(im: Image.Image) -> bytes:
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=100)
        return buf.getvalue()

    lo, hi = 0.0, 1.0
    for _ in range(10):
        alpha = (lo + hi) / 2
        bpp = len(encode(blended(800, 600, alpha, 0))) / (800 * 600)
        lo, hi = (alpha, hi) if bpp < target_bpp else (lo, alpha)
    alpha = (lo + hi) / 2

    def one(i: int) -> SentPhoto:
        data = encode(blended(width, height, alpha, 1000 + i))
        return SentPhoto(f"load-{i:02d}.jpg", data, hashlib.sha256(data).hexdigest(), width, height)

    # Pillow releases the GIL while encoding: threads use both CPUs.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        photos = list(pool.map(one, range(count)))
    for p in photos:
        if len(p.data) > MAX_UPLOAD_BYTES or p.width * p.height > MAX_UPLOAD_PIXELS:
            raise SystemExit(f"{p.name} is over the upload limits; lower --upload-mb")
    if len({p.sha256 for p in photos}) != count:
        raise SystemExit("two generated photos are identical")
    return photos


CREATE_DRAFTS = """
import json
from consent.models import Consent, Patient
from django.contrib.auth.models import User
from gallery.models import Case

# Draft cases owned by the demo photographer, one per upload, each on a demo patient's
# active consent, with the facts of a seeded demo case.
user = User.objects.get(username={user!r})
patients = list(Patient.objects.filter(reference__startswith="DEMO-").order_by("reference"))
template = Case.objects.filter(is_demo=True).order_by("pk").first()
pks = []
for n in range({count}):
    patient = patients[n % len(patients)]
    case = Case.objects.create(
        treatment=template.treatment, body_area=template.body_area,
        fitzpatrick=template.fitzpatrick, skin_type=template.skin_type,
        needle_depth_mm=template.needle_depth_mm, session_count=template.session_count,
        session_interval_weeks=template.session_interval_weeks,
        weeks_after_last_session=template.weeks_after_last_session,
        practitioner=template.practitioner, patient=patient,
        consent=Consent.objects.active().filter(patient=patient).first(),
        created_by=user, is_demo=True,
    )
    case.concerns.set(template.concerns.all())
    pks.append(case.pk)
print(json.dumps(pks))
"""

VERIFY_UPLOADS = """
import hashlib, json
from django.core.files.storage import storages
from gallery.models import Photo

# Read back after the server stopped: the row's hash and the stored bytes' own hash.
expected = json.loads({expected!r})
out = {{}}
for pk, sent in expected.items():
    rows = []
    for photo in Photo.objects.filter(case_id=int(pk)):
        digest = hashlib.sha256()
        size = 0
        try:
            with storages["default"].open(photo.original.name, "rb") as fp:
                for chunk in iter(lambda: fp.read(1 << 20), b""):
                    digest.update(chunk)
                    size += len(chunk)
            stored = digest.hexdigest()
        except OSError as exc:
            stored = "unreadable: %s" % exc
        rows.append({{
            "role": photo.role, "view": photo.view, "db_sha256": photo.sha256,
            "file_sha256": stored, "file_bytes": size, "name": photo.original.name,
            "renditions": len(photo.renditions), "rendered": photo.rendered_at is not None,
        }})
    out[pk] = rows
print(json.dumps(out))
"""


class Session:
    """The few parts of a browser session the staff pages need: cookies and CSRF."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.origin = f"http://{HOST}:{port}"
        self.cookies: dict[str, str] = {}

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
        try:
            sent = {"Accept": HTML_ACCEPT, **(headers or {})}
            if self.cookies:
                sent["Cookie"] = self.cookie_header()
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            data = resp.read()
            for value in resp.headers.get_all("Set-Cookie") or []:
                jar = SimpleCookie()
                jar.load(value)
                for name, morsel in jar.items():
                    if morsel["max-age"] == "0":
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = morsel.value
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def login(self) -> None:
        status, _, html = self.request("GET", "/staff/login/")
        token = CSRF_INPUT.search(html.decode())
        if status != 200 or not token:
            raise SystemExit(f"GET /staff/login/ answered {status} without a CSRF token")
        form = urlencode(
            {
                "csrfmiddlewaretoken": token.group(1),
                "username": DEMO_USER,
                "password": DEMO_PASSWORD,
                "next": "/staff/",
            }
        ).encode()
        status, headers, _ = self.request(
            "POST",
            "/staff/login/",
            form,
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": self.origin,
                "Referer": f"{self.origin}/staff/login/",
            },
        )
        if status != 302 or "sessionid" not in self.cookies:
            raise SystemExit(f"login as {DEMO_USER} failed: {status} {headers.get('location')}")


@dataclass
class Upload:
    case: int
    photo: SentPhoto
    status: int = 0
    error: str = ""
    seconds: float = 0.0
    answer: str = ""


def upload_one(
    port: int, up: Upload, url: str, cookie: str, csrf: str, barrier: threading.Barrier
) -> None:
    """One upload, as upload.js sends it: one file per multipart POST, X-CSRFToken."""
    boundary = f"----bench{uuid.uuid4().hex}"

    def part(name: str, value: str) -> bytes:
        return (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()

    body = b"".join(
        [
            part("role", "before"),
            part("view", "front"),
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="{up.photo.name}"\r\nContent-Type: image/jpeg\r\n\r\n'
            ).encode(),
            up.photo.data,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    origin = f"http://{HOST}:{port}"
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Cookie": cookie,
        "X-CSRFToken": csrf,
        "Origin": origin,
        "Referer": f"{origin}/staff/cases/{up.case}/",
        "Accept": "*/*",
    }
    # Generous: 20 uploads share 2 CPUs with validation and rendering; a lost upload is
    # a result to report, a hung one is caught here.
    conn = http.client.HTTPConnection(HOST, port, timeout=300)
    try:
        conn.connect()
        barrier.wait()  # every upload starts at the same moment
        t0 = time.perf_counter()
        conn.request("POST", url, body=body, headers=headers)
        resp = conn.getresponse()
        up.answer = resp.read().decode(errors="replace")[:300]
        up.status = resp.status
        up.seconds = time.perf_counter() - t0
        if resp.status != 201:
            up.error = f"HTTP {resp.status}"
    except (OSError, http.client.HTTPException, threading.BrokenBarrierError) as exc:
        up.error = f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


@dataclass
class UploadResult:
    uploads: list[Upload]
    wall: float
    server: ServerStats
    verified: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def sent_bytes(self) -> int:
        return sum(len(u.photo.data) for u in self.uploads)

    def lost(self) -> list[str]:
        """Why each upload counts as lost; empty when none is."""
        problems = []
        for up in self.uploads:
            rows = self.verified.get(str(up.case), [])
            why = []
            if up.status != 201:
                why.append(up.error or f"HTTP {up.status}")
            if len(rows) != 1:
                why.append(f"{len(rows)} photos stored")
            for row in rows:
                if row["db_sha256"] != up.photo.sha256:
                    why.append("recorded SHA-256 differs")
                if row["file_sha256"] != up.photo.sha256:
                    why.append(f"stored file SHA-256 differs ({row['file_bytes']} B)")
            if why:
                problems.append(f"case {up.case} ({up.photo.name}): {'; '.join(why)}")
        return problems


def run_uploads(port: int, master: int, cases: list[int], photos: list[SentPhoto]) -> UploadResult:
    session = Session(port)
    session.login()
    # The case page, as the photographer opens it: its upload form gives the CSRF token
    # and the upload URL that upload.js uses.
    status, _, html = session.request("GET", f"/staff/cases/{cases[0]}/")
    token = CSRF_INPUT.search(html.decode())
    if status != 200 or not token or not UPLOAD_URL.search(html.decode()):
        raise SystemExit(f"staff case page answered {status} without an upload form")
    csrf = token.group(1)
    cookie = session.cookie_header()
    uploads = [Upload(case, photo) for case, photo in zip(cases, photos, strict=True)]
    barrier = threading.Barrier(len(uploads) + 1)
    threads = [
        threading.Thread(
            target=upload_one,
            args=(port, up, f"/staff/cases/{up.case}/photos/", cookie, csrf, barrier),
            daemon=True,
        )
        for up in uploads
    ]
    for t in threads:
        t.start()
    watch = ServerWatch(master)
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return UploadResult(uploads, wall, watch.stop())


# ---------------------------------------------------------------------------------------
# Report


@dataclass
class Check:
    name: str
    measured: str
    target: str
    ok: bool | None  # None: a figure, not a check

    @property
    def result(self) -> str:
        return {True: "PASS", False: "FAIL", None: "-"}[self.ok]


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile (the p99 of 1000 answers is the 990th slowest)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def errors_text(errors: Counter) -> str:
    return ", ".join(f"{k} x{v}" for k, v in errors.most_common()) or "0"


def report_reads(warm: ReadResult, run: ReadResult) -> None:
    print()
    print(
        f"Read load: {run.connections} keep-alive connections for {run.duration:g} s "
        f"(after a {warm.duration:g} s warm-up):"
    )
    rows = []
    for u in run.urls.values():
        answers = len(u.latencies)
        rows.append(
            [
                u.path,
                str(answers),
                f"{u.ok / run.duration:.0f}",
                ms(quantile(u.latencies, 0.5)),
                ms(quantile(u.latencies, 0.95)),
                ms(quantile(u.latencies, 0.99)),
                ms(max(u.latencies, default=float("nan"))),
                f"{u.body_bytes / max(1, answers) / 1000:.1f}",
                f"{100 * u.cache_hits / max(1, answers):.0f}%",
                errors_text(u.errors),
            ]
        )
    lat = run.latencies
    rows.append(
        [
            "all",
            str(len(lat)),
            f"{run.ok / run.duration:.0f}",
            ms(quantile(lat, 0.5)),
            ms(quantile(lat, 0.95)),
            ms(quantile(lat, 0.99)),
            ms(max(lat, default=float("nan"))),
            "",
            "",
            errors_text(run.errors),
        ]
    )
    print_table(
        rows,
        ["url", "answers", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "kB", "hits", "errors"],
    )
    s = run.server
    per = ", ".join(f"{pid}: {c:.2f}" for pid, c in s.per_worker_cores.items())
    print(
        f"  server: per worker {per} CPUs; {1000 * s.cores * s.wall / max(1, len(lat)):.2f} "
        f"CPU ms per answer; peak RSS {s.peak_total_mb:.0f} MB all workers; "
        f"reconnects {run.reconnects}"
    )
    print(f"  {s.machine_line()}")
    per_answer = s.cores * s.wall / max(1, len(lat))
    if per_answer:
        # A bound, not a measurement: what the same CPU cost would allow with every CPU
        # given to the server (on a shared machine the measured rate is far lower).
        print(
            f"  at {1000 * per_answer:.2f} worker CPU ms per answer, {os.cpu_count()} CPUs "
            f"given to the server alone would allow at most ~{os.cpu_count() / per_answer:.0f} "
            "req/s"
        )
    print("  req/s: 200s completed inside the window / its length; kB: body bytes on the wire")
    if warm.errors:
        print(f"  warm-up errors: {errors_text(warm.errors)}")


def report_uploads(res: UploadResult) -> None:
    print()
    n = len(res.uploads)
    mean = res.sent_bytes / n / MB
    p = res.uploads[0].photo
    print(
        f"Uploads: {n} concurrent, {mean:.1f} MB each on average ({p.width}x{p.height} JPEG, "
        f"quality 100), {res.sent_bytes / MB:.0f} MB in all:"
    )
    rows = []
    for up in res.uploads:
        rows_v = res.verified.get(str(up.case), [])
        row = rows_v[0] if len(rows_v) == 1 else {}
        rows.append(
            [
                f"case {up.case}",
                f"{len(up.photo.data) / MB:.2f}",
                str(up.status or "-"),
                f"{up.seconds:.1f}",
                up.photo.sha256[:12],
                "yes" if row.get("db_sha256") == up.photo.sha256 else "NO",
                "yes" if row.get("file_sha256") == up.photo.sha256 else "NO",
                str(row.get("renditions", "-")),
                (up.error + " " + up.answer)[:70] if up.status != 201 else "",
            ]
        )
    print_table(
        rows,
        ["upload", "MB", "status", "s", "sha256", "db hash", "file hash", "renditions", "error"],
    )
    ok = [u.seconds for u in res.uploads if u.status]
    s = res.server
    print(
        f"  wall {res.wall:.1f} s from the first byte sent to the last answer: "
        f"{res.sent_bytes / MB / res.wall:.1f} MB/s; per upload p50 {quantile(ok, 0.5):.1f} s, "
        f"p99 {quantile(ok, 0.99):.1f} s; statuses "
        f"{dict(Counter(u.status for u in res.uploads))}"
    )
    print(
        f"  server: {s.cores * s.wall / n:.2f} CPU s per upload; peak RSS "
        f"{s.peak_total_mb:.0f} MB all workers ({s.peak_worker_mb:.0f} MB the largest). Each "
        "upload is validated (full decode),\n  stored, and rendered (3 widths x AVIF/WebP/JPEG) "
        "inside its request (ImmediateBackend)"
    )
    print(f"  {s.machine_line()}")
    per_upload = s.cores * s.wall / n
    if per_upload:
        print(
            f"  at {per_upload:.2f} CPU s per upload, {os.cpu_count()} CPUs given to the server "
            f"alone would allow at most ~{os.cpu_count() / per_upload * mean:.0f} MB/s"
        )


def server_log_report(
    tmp: Path, stop_offset: int, workers: int
) -> tuple[Counter, list[str], Counter, Counter, Counter]:
    """Problems in the server log, and per-status / per-worker counts from the access log.

    ``stop_offset`` is the log's size when the script began to stop gunicorn.
    """
    problems: Counter = Counter()
    evidence: list[str] = []
    text = (tmp / "server.log").read_bytes()
    running = text[:stop_offset].decode(errors="replace").splitlines()
    lines = running + text[stop_offset:].decode(errors="replace").splitlines()
    booted = 0
    for i, line in enumerate(lines):
        for name, pattern in LOG_PROBLEMS.items():
            if i >= len(running) and name not in SHUTDOWN_PROBLEMS:
                continue
            if not pattern.search(line):
                continue
            if name == "worker booted after the start":
                booted += 1
                if booted <= workers:
                    continue  # the initial workers
            problems[name] += 1
            if problems[name] <= 3:
                evidence.append(f"{name}: {' | '.join(lines[max(0, i - 1) : i + 2])[:400]}")
    statuses: Counter = Counter()
    per_worker: Counter = Counter()
    uploads_per_worker: Counter = Counter()
    for line in (tmp / "access.log").read_text(errors="replace").splitlines():
        match = ACCESS_LINE.search(line)
        if match:
            method, path, status, _, pid = match.groups()
            if path.startswith("/staff/cases/") and path.endswith("/photos/"):
                path = "/staff/cases/<pk>/photos/"
                uploads_per_worker[pid] += 1
            statuses[f"{status} {method} {path.split('?')[0]}"] += 1
            per_worker[pid] += 1
    return problems, evidence, statuses, per_worker, uploads_per_worker


# ---------------------------------------------------------------------------------------
# Main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # --quick changes the defaults of these three; an explicit value still wins.
    parser.add_argument("--duration", type=float, help="seconds of read load [30; quick 5]")
    parser.add_argument("--connections", type=int, default=64, help="concurrent readers")
    parser.add_argument("--uploads", type=int, help="concurrent uploads [20; quick 4]")
    parser.add_argument("--upload-mb", type=float, help="MB per photo [15; quick 2]")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--count", type=int, default=30, help="demo cases to seed")
    parser.add_argument("--budget", type=int, default=900, help="seconds for the whole run")
    parser.add_argument("--quick", action="store_true", help="5 s of reads, 4 uploads of 2 MB")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a check fails")
    parser.add_argument(
        "--workdir", type=Path, help="keep the temp files here (reused: seeding is idempotent)"
    )
    args = parser.parse_args(argv)
    for name, full, quick in (
        ("duration", 30.0, 5.0),
        ("uploads", 20, 4),
        ("upload_mb", 15.0, 2.0),
    ):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.uploads < 1 or args.connections < 1 or args.duration <= 0:
        parser.error("--uploads, --connections and --duration must be positive")

    # SIGTERM and the budget's alarm unwind through the finally blocks that stop gunicorn.
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGALRM, over_budget)
    signal.alarm(args.budget)
    try:
        if args.workdir:
            args.workdir.mkdir(parents=True, exist_ok=True)
            return run(args, args.workdir.resolve())
        with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
            return run(args, Path(tmp))
    except BudgetExceeded as exc:
        # Raised wherever the alarm struck; the finally blocks on the way have stopped
        # gunicorn already.
        raise SystemExit(f"stopped: {exc}") from None
    finally:
        signal.alarm(0)


def over_budget(signum: int, frame: object) -> None:
    raise BudgetExceeded("the run exceeded --budget; gunicorn was stopped")


def run(args: argparse.Namespace, tmp: Path) -> int:
    (tmp / f"{SETTINGS_MODULE}.py").write_text(SETTINGS_SOURCE)
    env = bench_env(tmp)
    for name in ("server.log", "access.log"):
        (tmp / name).write_bytes(b"")  # a reused --workdir: this run's lines only
    print(f"Work dir {tmp}; database {env['DATABASE_URL'].split('@')[-1]}")
    if os.environ.get("DATABASE_URL"):
        print("  DATABASE_URL is set: that database is migrated and seeded with demo cases.")
    print(f"Setup ({os.cpu_count()} CPUs, load average {loadavg()}):", flush=True)
    manage(env, "migrate", "--noinput")
    # The demo login with its known password is made only with debug on.
    manage({**env, "DJANGO_DEBUG": "on"}, "seed_demo", "--count", str(args.count))
    manage(env, "collectstatic", "--noinput")
    cases = cast(
        list[int], shell_json(env, CREATE_DRAFTS.format(user=DEMO_USER, count=args.uploads))
    )
    t0 = time.perf_counter()
    photos = make_photos(args.uploads, int(args.upload_mb * MB))
    print(
        f"  {len(photos)} photos generated ({photos[0].width}x{photos[0].height}, "
        f"{min(len(p.data) for p in photos) / MB:.2f}-{max(len(p.data) for p in photos) / MB:.2f}"
        f" MB): {time.perf_counter() - t0:.1f} s",
        flush=True,
    )

    port = free_port()
    warmup = 1.0 if args.quick else 3.0
    with gunicorn(env, port, args.workers, args.threads, tmp) as master:
        status, body = simple_get(port, "/api/cases/")
        if status != 200 or not json.loads(body)["results"]:
            raise SystemExit(f"/api/cases/ answered {status} with no case")
        case_path = urlsplit(json.loads(body)["results"][0]["url"]).path
        paths = ["/gallery/", case_path, "/api/cases/", "/api/cases/?fitzpatrick=3"]
        print(
            f"gunicorn on {HOST}:{port}: gthread, {args.workers} workers x {args.threads} "
            f"threads, master {master}; reading {', '.join(paths)}",
            flush=True,
        )
        # Warm-up: imports, templates and the page cache in every worker; checked too.
        warm = run_read_load(port, master, paths, warmup, args.connections)
        # The machine may be shared: its load says how far to trust absolute figures.
        machine = [f"load average before the reads: {loadavg()}"]
        reads = run_read_load(port, master, paths, args.duration, args.connections)
        machine.append(f"after the reads: {loadavg()}")
        print(f"  read load done ({len(reads.latencies)} answers)", flush=True)
        uploads = run_uploads(port, master, cases, photos)
        machine.append(f"after the uploads: {loadavg()}")
        print(f"  uploads done ({uploads.wall:.1f} s)", flush=True)
        stop_offset = (tmp / "server.log").stat().st_size
    # Read back once the server has stopped: what is on disk and in the database now is
    # what a clinic would have.
    expected = json.dumps({str(u.case): u.photo.sha256 for u in uploads.uploads})
    verified = shell_json(env, VERIFY_UPLOADS.format(expected=expected))
    uploads.verified = cast(dict[str, list[dict]], verified)
    return report(args, tmp, warm, reads, uploads, machine, stop_offset)


def report(
    args: argparse.Namespace,
    tmp: Path,
    warm: ReadResult,
    reads: ReadResult,
    up: UploadResult,
    machine: list[str],
    stop_offset: int,
) -> int:
    print()
    print(f"Machine: {os.cpu_count()} CPUs; " + ", ".join(machine) + " (other processes included)")
    report_reads(warm, reads)
    report_uploads(up)
    problems, evidence, statuses, per_worker, uploads_per_worker = server_log_report(
        tmp, stop_offset, args.workers
    )

    print()
    print("Server side (gunicorn access log, warm-up and login included):")
    for key, n in sorted(statuses.items()):
        print(f"  {key}: {n}")
    print(f"  answers per worker pid: {dict(per_worker)}")
    # Connections stay with the worker that accepted them: 20 uploads over 4 x 4 threads
    # queue behind each other in the workers that accepted more than 4.
    print(f"  uploads per worker pid: {dict(uploads_per_worker)}")
    replaced = sorted(set(reads.server.workers_replaced) | set(up.server.workers_replaced))
    if replaced:
        print(f"  workers replaced during the run: {replaced}")
    if problems:
        print("  problems in the server log:")
        for name, n in problems.most_common():
            print(f"    {name}: {n}")
        for line in evidence:
            print(f"    > {line}")
    else:
        print("  server log: no worker timeout, traceback, 'database is locked' or failed upload")

    read_errors = reads.errors + warm.errors
    n_reads = len(reads.latencies) + len(warm.latencies)
    lost = up.lost()
    lat = reads.latencies
    ok_up = [u.seconds for u in up.uploads if u.status]
    checks = [
        Check(
            f"read load: errors ({args.connections} conns, {args.duration:g} s, warm-up too)",
            f"{sum(read_errors.values())} of {n_reads}",
            "0",
            not read_errors,
        ),
        Check(
            f"uploads: lost ({len(up.uploads)} x {args.upload_mb:g} MB, SHA-256 db + file)",
            f"{len(lost)} of {len(up.uploads)}",
            "0",
            not lost,
        ),
        Check(
            "server log: timeouts, tracebacks, database locked, replaced workers",
            f"{sum(problems.values()) + len(replaced)}",
            "0",
            not problems and not replaced,
        ),
        Check("read load: requests/second", f"{reads.ok / reads.duration:.0f}", "-", None),
        Check(
            "read load: p50 / p95 / p99 latency",
            f"{ms(quantile(lat, 0.5))} / {ms(quantile(lat, 0.95))} / {ms(quantile(lat, 0.99))} ms",
            "-",
            None,
        ),
        Check(
            "read load: CPUs server / client / other processes",
            f"{reads.server.cores:.2f} / {reads.server.client_cores:.2f} / "
            f"{reads.server.others_cores:.2f}",
            "-",
            None,
        ),
        Check(
            "uploads: throughput",
            f"{up.sent_bytes / MB / up.wall:.1f} MB/s ({up.wall:.1f} s)",
            "-",
            None,
        ),
        Check(
            "uploads: latency p50 / p99",
            f"{quantile(ok_up, 0.5):.1f} / {quantile(ok_up, 0.99):.1f} s",
            "-",
            None,
        ),
    ]
    print()
    if lost:
        print("Lost uploads:")
        for line in lost:
            print(f"  {line}")
        print()
    print_table(
        [[c.name, c.measured, c.target, c.result] for c in checks],
        ["check", "measured", "target", "result"],
    )
    failed = [c for c in checks if c.ok is False]
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
