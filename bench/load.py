#!/usr/bin/env python
"""Public reads under 64 keep-alive connections (wrk), then concurrent 15 MB uploads whose
stored originals are checked by SHA-256, on gunicorn gthread. See bench/README.md."""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import os
import random
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import app
import requests

MAX_UPLOAD_BYTES = 40 * 1024 * 1024  # clinic/settings.py
MAX_UPLOAD_PIXELS = 60_000_000
MB = 1_000_000
RAMP = 0.5  # seconds over which the wrk processes start, as browsers arrive
GUNICORN = ("--worker-class", "gthread", "--backlog", "2048", "--timeout", "120")
# Server log lines that are failures whatever the client saw; once gunicorn is being
# stopped, only SHUTDOWN_PROBLEMS count. Replaced workers are found by their pids.
LOG_PROBLEMS = {
    "worker timeout": r"WORKER TIMEOUT",
    "worker killed or exited": r"was sent (SIG|code)|Worker exit",
    "database is locked": r"database is locked",
    "traceback": r"^Traceback \(most recent call last\)",
    "gunicorn request error": r"Error handling request",
    "upload failed (503)": r"Upload failed for case",
    "renditions failed": r"Could not build renditions",
}
SHUTDOWN_PROBLEMS = ("worker timeout", "database is locked", "traceback")
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
UPLOAD_FIELDS = {"role": "before", "view": "front"}  # the file part comes after them


def rss_mb(pid: int) -> float:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except OSError:  # the worker has just exited
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class Stats:
    """A phase seen from the server: peak RSS of all workers and of the largest, replaced
    workers."""

    wall: float = 0.0
    peak_all_mb: float = 0.0
    peak_one_mb: float = 0.0
    replaced: list[int] = field(default_factory=list)


@contextmanager
def watch(server: app.Server) -> Iterator[Stats]:
    """Stats of the block, memory sampled every 0.2 s."""
    stats, pids, stop = Stats(), server.workers(), threading.Event()
    t0 = time.perf_counter()

    def sample() -> None:
        while not stop.wait(0.2):
            mb = [rss_mb(pid) for pid in server.workers()]
            stats.peak_all_mb = max(stats.peak_all_mb, sum(mb))
            stats.peak_one_mb = max(stats.peak_one_mb, *mb, 0.0)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    yield stats
    stop.set()
    thread.join()
    stats.wall = time.perf_counter() - t0
    stats.replaced = sorted(set(server.workers()) ^ set(pids))


def read_load(
    server: app.Server, paths: list[str], seconds: int, connections: int
) -> tuple[dict[str, app.Load], Stats]:
    """One wrk of 4 connections per URL in turn, started over RAMP seconds: connections
    opened in the same millisecond all go to one worker, and keep-alive keeps them there."""
    with watch(server) as stats:
        procs = []
        for i in range(connections // 4):
            path = paths[i % len(paths)]
            accept = "application/json" if path.startswith("/api/") else app.HTML_ACCEPT
            # A browser's Accept-Encoding: GZipMiddleware's cost counts.
            headers = {"Accept": accept, "Accept_Encoding": "gzip, deflate, br, zstd"}
            procs.append((path, app.wrk_start(server.base + path, seconds, 4, **headers)))
            time.sleep(RAMP * 4 / connections)
        loads = {path: app.Load(0) for path in paths}
        for path, proc in procs:
            loads[path] += app.wrk_wait(proc)
    return loads, stats


@dataclass
class Upload:
    case: int
    name: str
    data: bytes
    sha256: str
    status: int = 0
    seconds: float = 0.0
    error: str = ""  # why it counts as lost, once checked


def make_uploads(cases: list[int], target_bytes: int) -> tuple[list[Upload], str]:
    """Distinct high-entropy JPEGs (quality 100) of about ``target_bytes``: a gradient
    blended with seeded noise, the weight found by bisection on a small tile."""
    from PIL import Image

    width = round(math.sqrt(min(target_bytes / 0.8, 5000 * 3750) * 4 / 3))
    height = round(width * 3 / 4)
    if target_bytes > MAX_UPLOAD_BYTES or width * height > MAX_UPLOAD_PIXELS:
        raise SystemExit("a photo would be over the upload limits; lower --upload-mb")

    def encode(w: int, h: int, alpha: float, seed: int) -> bytes:
        noise = Image.frombytes("RGB", (w, h), random.Random(seed).randbytes(w * h * 3))
        gradient = Image.linear_gradient("L").resize((w, h)).convert("RGB")
        buf = io.BytesIO()
        Image.blend(gradient, noise, alpha).save(buf, format="JPEG", quality=100)
        return buf.getvalue()

    lo, hi = 0.0, 1.0
    for _ in range(10):
        alpha = (lo + hi) / 2
        if len(encode(800, 600, alpha, 0)) / (800 * 600) < target_bytes / (width * height):
            lo = alpha
        else:
            hi = alpha

    def one(i: int) -> Upload:
        data = encode(width, height, (lo + hi) / 2, 1000 + i)
        return Upload(cases[i], f"load-{i:02d}.jpg", data, hashlib.sha256(data).hexdigest())

    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:  # Pillow frees the GIL
        return list(pool.map(one, range(len(cases)))), f"{width}x{height}"


# Draft cases of the demo photographer, one per upload, each on a demo patient's active
# consent, with the facts of a seeded demo case.
DRAFTS = """
import json
from consent.models import Consent, Patient
from django.contrib.auth.models import User
from gallery.models import Case
user = User.objects.get(username={user!r})
patients = list(Patient.objects.filter(reference__startswith="DEMO-").order_by("reference"))
t = Case.objects.filter(is_demo=True).order_by("pk").first()
facts = ["treatment", "body_area", "fitzpatrick", "skin_type", "needle_depth_mm",
         "session_count", "session_interval_weeks", "weeks_after_last_session", "practitioner",
         "location"]
pks = []
for n in range({count}):
    patient = patients[n % len(patients)]
    consent = Consent.objects.active().filter(patient=patient).first()
    case = Case.objects.create(**{{f: getattr(t, f) for f in facts}}, patient=patient,
                               consent=consent, created_by=user, is_demo=True)
    case.concerns.set(t.concerns.all())
    pks.append(case.pk)
print(json.dumps(pks))
"""

# Read back after the server stopped: each row's hash and the stored bytes' own hash.
VERIFY = """
import hashlib, json
from django.core.files.storage import storages
from gallery.models import Photo
out = {{}}
for pk in {cases!r}:
    out[str(pk)] = rows = []
    for photo in Photo.objects.filter(case_id=pk):
        try:
            with storages["default"].open(photo.original.name, "rb") as fp:
                stored = hashlib.file_digest(fp, "sha256").hexdigest()
        except OSError as exc:
            stored = "unreadable: %s" % exc
        rows.append({{"db_sha256": photo.sha256, "file_sha256": stored,
                      "renditions": len(photo.renditions)}})
print(json.dumps(out))
"""


def login(base: str, case: int) -> dict[str, Any]:
    """``requests`` arguments for the photographer: cookies and a case page's CSRF token."""
    session = requests.Session()
    session.trust_env = False  # loopback: no proxy from the environment
    url = f"{base}/staff/login/"
    token = CSRF_INPUT.search(session.get(url, timeout=30).text)
    if not token:
        raise SystemExit("the login page has no CSRF token")
    form = {"username": app.DEMO_USER, "password": app.DEMO_PASSWORD, "next": "/staff/"}
    form["csrfmiddlewaretoken"] = token.group(1)
    session.post(url, data=form, headers={"Referer": url}, timeout=30)
    if "sessionid" not in session.cookies:
        raise SystemExit(f"login as {app.DEMO_USER} failed")
    html = session.get(f"{base}/staff/cases/{case}/", timeout=30).text
    token = CSRF_INPUT.search(html)
    if not token or 'id="upload"' not in html:
        raise SystemExit("the staff case page has no upload form")
    return {"cookies": session.cookies.get_dict(), "headers": {"X-CSRFToken": token.group(1)}}


def upload_one(base: str, up: Upload, auth: dict[str, Any], barrier: threading.Barrier) -> None:
    """One upload as upload.js sends it: one file per multipart POST, X-CSRFToken; the body
    is encoded before the clock starts."""
    page = f"{base}/staff/cases/{up.case}/"
    files = {"file": (up.name, up.data, "image/jpeg")}
    headers = auth["headers"] | {"Origin": base, "Referer": page, "Accept": "*/*"}
    post = requests.Request("POST", f"{page}photos/", headers, files, UPLOAD_FIELDS)
    post.cookies = auth["cookies"]
    session = requests.Session()
    session.trust_env = False  # loopback: no proxy from the environment
    try:
        request = post.prepare()
        barrier.wait()  # every upload starts at the same moment
        t0 = time.perf_counter()
        resp = session.send(request, timeout=300)
        up.status, up.seconds = resp.status_code, time.perf_counter() - t0
        up.error = "" if resp.status_code == 201 else f"HTTP {resp.status_code} {resp.text[:70]}"
    except (requests.RequestException, threading.BrokenBarrierError) as exc:
        up.error = f"{type(exc).__name__}: {exc}"


def run_uploads(server: app.Server, uploads: list[Upload]) -> Stats:
    auth = login(server.base, uploads[0].case)
    barrier = threading.Barrier(len(uploads) + 1)
    with watch(server) as stats, ThreadPoolExecutor(len(uploads)) as pool:
        for up in uploads:
            pool.submit(upload_one, server.base, up, auth, barrier)
        barrier.wait()  # the pool's threads are all waiting: release them together
    return stats


def verify(uploads: list[Upload], verified: dict[str, list[dict]]) -> list[list[str]]:
    """Each upload's row of the report; ``error`` says why it counts as lost."""
    rows = []
    for up in uploads:
        found = verified.get(str(up.case), [])
        row = found[0] if len(found) == 1 else {}
        db, stored = row.get("db_sha256") == up.sha256, row.get("file_sha256") == up.sha256
        why = [(up.error, up.error), (len(found) != 1, f"{len(found)} photos stored")]
        why += [(not db, "recorded SHA-256 differs"), (not stored, "stored file SHA-256 differs")]
        up.error = "; ".join(text for bad, text in why if bad)
        cells = [f"case {up.case}", f"{len(up.data) / MB:.2f}", str(up.status or "-")]
        cells += [f"{up.seconds:.1f}", up.sha256[:12], "yes" if db else "NO"]
        cells += ["yes" if stored else "NO", str(row.get("renditions", "-")), up.error]
        rows.append(cells)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=30, help="seconds of read load")
    parser.add_argument("--connections", type=int, default=64, help="concurrent readers")
    parser.add_argument("--uploads", type=int, default=20, help="concurrent uploads")
    parser.add_argument("--upload-mb", type=float, default=15.0, help="MB per photo")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--count", type=int, default=30, help="demo cases to seed")
    parser.add_argument("--budget", type=int, default=900, help="seconds for the whole run")
    parser.add_argument("--quick", action="store_true", help="5 s of reads, 4 uploads of 2 MB")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a check fails")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.uploads, args.upload_mb = 5, 4, 2.0
    if args.uploads < 1 or args.connections < 4 or args.duration < 1:
        parser.error("need --uploads >= 1, --connections >= 4, --duration >= 1")
    # SIGTERM and the budget's alarm unwind through the finally blocks that stop gunicorn.
    app.require_wrk()
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("stopped: the run exceeded --budget"))
    signal.alarm(args.budget)
    # One login per run is no brute force, but a lock-out must never skew a rerun.
    database = os.environ.get("DATABASE_URL", "")
    with app.scratch("bench-load-", args.count, database, AXES_ENABLED="off") as (env, tmp):
        return run(args, env, tmp)


def run(args: argparse.Namespace, env: dict[str, str], tmp: Path) -> int:
    cases = app.shell_json(env, DRAFTS.format(user=app.DEMO_USER, count=args.uploads))
    t0 = time.perf_counter()
    uploads, size = make_uploads(cases, int(args.upload_mb * MB))
    sent = sum(len(u.data) for u in uploads) / MB
    print(f"  {len(uploads)} photos of {size}, {sent:.0f} MB: {time.perf_counter() - t0:.1f} s")
    options = (*GUNICORN, "--threads", str(args.threads))
    with app.gunicorn(env, tmp, *options, workers=args.workers, stop_timeout=40) as server:
        paths = ["/gallery/", app.first_case_path(server), "/api/cases/"]
        paths.append("/api/cases/?fitzpatrick=3")
        print(f"gunicorn on {server.base}: gthread, {args.workers} x {args.threads} threads")
        # Warm-up: imports, templates and the page cache in every worker; checked too.
        warm, _ = read_load(server, paths, 1 if args.quick else 3, args.connections)
        machine = [f"before the reads {app.loadavg()}"]
        reads, rs = read_load(server, paths, args.duration, args.connections)
        machine.append(f"after the reads {app.loadavg()}")
        us = run_uploads(server, uploads)
        machine.append(f"after the uploads {app.loadavg()}")
        stop_offset = server.log.stat().st_size
    # Read back once the server has stopped: what a clinic would have.
    verified = app.shell_json(env, VERIFY.format(cases=cases))
    print(f"\nMachine: {os.cpu_count()} CPUs; load average {', '.join(machine)}")

    total = sum(reads.values(), app.Load(1))
    warm_total = sum(warm.values(), app.Load(1))
    print(f"\nRead load: {args.connections} keep-alive connections (wrk), {args.duration} s:")
    rows = []
    for label, x in [*reads.items(), ("all", total)]:
        latencies = [ms(app.quantile(x.hist, q)) for q in (0.5, 0.95, 0.99, 1.0)]
        kb, hits = f"{x.body / x.requests / 1000:.1f}", f"{100 * x.hits / x.requests:.0f}%"
        rows.append([label, str(x.requests), f"{x.rps:.0f}", *latencies, kb, hits, x.error_text()])
    head = ["url", "answers", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "kB", "hits"]
    app.print_table(rows, [*head, "errors"])
    print(f"  peak RSS {rs.peak_all_mb:.0f} MB all workers; req/s: 200s per second; kB: body")
    print(f"\nUploads: {len(uploads)} concurrent, {sent / len(uploads):.1f} MB each ({size}):")
    head = ["upload", "MB", "status", "s", "sha256", "db hash", "file hash", "renditions"]
    app.print_table(verify(uploads, verified), [*head, "lost because"])
    print(
        f"  peak RSS {us.peak_all_mb:.0f} MB all workers, {us.peak_one_mb:.0f} the largest\n"
        "\nServer log (from the start; from the stop on, timeouts, tracebacks, database locked):"
    )
    problems = log_problems(server.log, stop_offset) + len(set(rs.replaced + us.replaced))
    lost = len([u for u in uploads if u.error])
    took = Counter(u.seconds for u in uploads if u.status)
    latency = " / ".join(ms(app.quantile(total.hist, q)) for q in (0.5, 0.95, 0.99))
    errors, answers = total.errors + warm_total.errors, total.requests + warm_total.requests
    conns = f"{args.connections} conns, {args.duration} s, warm-up too"
    lost_what = f"{len(uploads)} x {args.upload_mb:g} MB, SHA-256 db + file"
    log_check = "server log: timeouts, tracebacks, database locked, replaced workers"
    upload_latency = f"{app.quantile(took, 0.5):.1f} / {app.quantile(took, 0.99):.1f} s"
    checks = [
        (f"read load: errors ({conns})", f"{errors} of {answers}", "0", not errors),
        (f"uploads: lost ({lost_what})", f"{lost} of {len(uploads)}", "0", not lost),
        (log_check, str(problems), "0", not problems),
        ("read load: requests/second", f"{total.rps:.0f}", "-", None),
        ("read load: p50 / p95 / p99 latency", f"{latency} ms", "-", None),
        ("uploads: throughput", f"{sent / us.wall:.1f} MB/s ({us.wall:.1f} s)", "-", None),
        ("uploads: latency p50 / p99", upload_latency, "-", None),
    ]
    app.print_verdicts(checks, "check")
    return 1 if args.strict and any(ok is False for *_, ok in checks) else 0


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def log_problems(log: Path, stop_offset: int) -> int:
    """Failures in gunicorn's log; from ``stop_offset``, when gunicorn was being stopped,
    only SHUTDOWN_PROBLEMS."""
    text = log.read_bytes()
    running = len(text[:stop_offset].decode(errors="replace").splitlines())
    lines = text.decode(errors="replace").splitlines()
    problems: Counter = Counter()
    for i, line in enumerate(lines):
        for name, pattern in LOG_PROBLEMS.items():
            if (i < running or name in SHUTDOWN_PROBLEMS) and re.search(pattern, line):
                problems[name] += 1
                if problems[name] <= 3:
                    print(f"  > {name}: {' | '.join(lines[max(0, i - 1) : i + 2])[:400]}")
    if not problems:
        print("  no worker timeout, traceback, 'database is locked' or failed upload")
    return sum(problems.values())


if __name__ == "__main__":
    sys.exit(main())
