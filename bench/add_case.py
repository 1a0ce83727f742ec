#!/usr/bin/env python
"""Benchmark: time to add a case with four photos, on the demo data, through the staff UI.

Usage::

    .venv/bin/python bench/add_case.py                     # 3 repetitions + in-process profile
    .venv/bin/python bench/add_case.py --reps 5
    .venv/bin/python bench/add_case.py --reps 1 --no-profile   # smoke test
    .venv/bin/python bench/add_case.py --no-heic           # four JPEGs (an Android phone)

What is measured: a photographer on a tablet (Debian's Chromium through Playwright, 820x1180,
touch) adds one case with four 12 MP phone photos, the flow of
``tests/test_browser_staff.py`` without the bad file, timed phase by phase with
``time.monotonic()``:

1. *log in*: the login page, the form, the staff dashboard;
2. *find the patient*: "Add a case", a search by reference, the patient's link;
3. *facts form*: the facts filled in, "Create the case", the case page;
4. *choose 4 files*: ``#pick-files`` and the before/after and view selects of each row;
5. *upload 4 photos*: "Upload" until the fourth upload answered 201 (every row ``.ok``).
   ``upload.js`` sends the four files at once, one request each; the server validates the
   file, stores the original and, the task backend being immediate, rebuilds the case's
   renditions inside the same request;
6. *reload with pairs*: ``upload.js`` reloads the page by itself when every row is ok; until
   the reloaded page has loaded (its four staff previews included) and shows two pairs with
   two visible sliders;
7. *submit for review*: the button, until "Sent for review." shows.

The total is the wall clock from the first to the last step. Each repetition (``--reps``)
is a new browser context, a new patient with an active consent, and a new case; the same
four files are uploaded every time. Rep 1 runs on freshly started workers (imports,
templates, first AVIF/HEIF use), which is why the median is the figure to quote.

Server side: gunicorn runs with a config file written into the temp dir whose hooks time
every request in the worker (``pre_request`` to ``post_request``, the span gunicorn's access
log reports as ``%(D)s``) and, by wrapping module attributes the view code looks up at call
time, the photo pipeline's steps inside it: ``validate_photo``, ``add_photo`` (validation +
storing the original + the row), ``build_renditions`` (of which ``render_crop`` per photo
and ``sync_public_files``). Timestamps are ``time.monotonic()`` (CLOCK_MONOTONIC, one clock
for every process on the machine), so each request is placed in the browser phase that
sent it. Each request's CPU time in its worker (``time.process_time()``, all threads) is
recorded too: on a busy machine the wall clock also measures the other processes, the CPU
time hardly. The client's view of each upload request comes from Playwright's
``request.timing``; gunicorn's access log (``%(D)s``) is read as a cross-check. No project
file is changed.

The *in-process profile* (``--no-profile`` skips it) then runs the project's code directly
in a Python process on the same four files, in CPU seconds: ``validate_photo``,
``render_crop`` split into decode+resize and each output format, and the upload sequence as
the view runs it (store a photo, rebuild the whole case, four times) against one build after
all four.

There is no target: the figures are for the issue note, absolute seconds on this machine
(the CPU count and load average are printed with them; compare wall and CPU to see how much
of a wall figure is other load).

The four files are generated once per run in the temp dir: ``gallery.demo_images.skin_pair``
drawn at 1333x1000 (two views, before and after), upscaled to 4000x3000 with Gaussian noise
so that a JPEG at quality 90 weighs 3-5 MB like a phone's, with EXIF (Make, Model,
DateTimeOriginal, Orientation). The close-up pair is portrait: the before is stored
landscape with Orientation 6 as phones do; the after is a HEIC (as an iPhone sends; pixels
stored upright, as libheif returns them) unless ``--no-heic``.

Isolation: everything is written to a temporary directory, never into the repository: the
SQLite database, MEDIA_ROOT, the file cache (CACHE_DIR), STATIC_ROOT (through a short
settings module in the temp dir, since ``clinic/settings.py`` fixes STATIC_ROOT), the
photos and the logs. AWS_*, REDIS_URL and DATABASE_URL of the caller are ignored so a
benchmark can never write to a real bucket, cache or database. DJANGO_HTTPS=off: the server
speaks plain http on loopback (the production default redirects to https; django-axes stays
on, as in production). gunicorn binds loopback on a free port in 18700-18799 with its
control socket disabled and is stopped by its process group id; Chromium is closed by
Playwright; both in ``finally`` blocks.
"""

from __future__ import annotations

import argparse
import hashlib
import io
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
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import interrupted, loadavg, stop_group

# The parent imports gallery.demo_images to draw the photos: no __pycache__ in the repo.
sys.dont_write_bytecode = True

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent  # the Django project root (holds manage.py)

HOST = "127.0.0.1"  # loopback only
PORTS = range(18700, 18800)
WORKERS = 2
GUNICORN_TIMEOUT = 120  # s; a request over this is killed, and the benchmark says so

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# As tests/browser.py: root in a container (no sandbox), no GPU, nothing calling home.
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
TABLET = {"width": 820, "height": 1180}

DEMO_USERNAME = "demo"  # made by seed_demo; in all three staff groups
DEMO_PASSWORD = "demo-gallery-2026"
DEMO_COUNT = 30
PROFILE_PATIENT = "BENCH-PROFILE"

SETTINGS_MODULE = "bench_add_case_settings"
SETTINGS_SOURCE = '''"""Written by bench/add_case.py: clinic.settings, STATIC_ROOT in a temp dir."""

import os
from pathlib import Path

from clinic.settings import *  # noqa: F403

STATIC_ROOT = Path(os.environ["BENCH_STATIC_ROOT"])
'''

# A gunicorn config file (hooks only; every other option is on the command line).
PROBE_SOURCE = '''"""Written by bench/add_case.py: time each request in the worker and the photo
pipeline's steps inside it; one JSON line per request into $BENCH_PROBE_LOG."""

import functools
import json
import os
import time

_current = None  # the request this (sync, one-request-at-a-time) worker is handling


def _timed(step, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            if _current is not None:
                seconds, count = _current["steps"].get(step, (0.0, 0))
                _current["steps"][step] = (seconds + time.monotonic() - t0, count + 1)

    return wrapper


def _named(fn):
    @functools.wraps(fn)
    def wrapper(case, role, view, fp, name):
        if _current is not None:
            _current["upload"] = {"name": name, "role": role, "view": view}
        return fn(case, role, view, fp, name)

    return wrapper


def post_worker_init(worker):
    # The application is loaded. The view and the pipeline look these names up in their
    # modules at call time, so replacing the module attributes times every call.
    from gallery import images, publication, staff

    images.validate_photo = _timed("validate_photo", images.validate_photo)
    images.render_crop = _timed("render_crop", images.render_crop)
    staff.add_photo = _named(_timed("add_photo", staff.add_photo))
    publication.build_renditions = _timed("build_renditions", publication.build_renditions)
    publication.sync_public_files = _timed("sync_public_files", publication.sync_public_files)


def pre_request(worker, req):
    global _current
    _current = {
        "pid": os.getpid(),
        "method": req.method,
        "path": req.path,
        "t0": time.monotonic(),
        # CPU of this worker process (all its threads): unlike the wall clock, barely
        # moved by other load on the machine.
        "c0": time.process_time(),
        "steps": {},
    }


def post_request(worker, req, environ, resp):
    global _current
    record, _current = _current, None
    if record is None:
        return
    record["t1"] = time.monotonic()
    record["cpu"] = time.process_time() - record.pop("c0")
    record["status"] = getattr(resp, "status_code", None)
    with open(os.environ["BENCH_PROBE_LOG"], "a") as out:
        out.write(json.dumps(record) + "\\n")
'''

# Patients for the reps, each with an active consent like the demo patients' (website,
# identifiable, adult), recorded by the demo user. Run with `manage.py shell -c`.
PATIENTS_CODE = """
from datetime import timedelta
from django.contrib.auth.models import User
from django.utils import timezone
from consent.models import Consent, ConsentEvent, ConsentForm, Patient
staff = User.objects.get(username={user!r})
now = timezone.now()
for ref in {refs!r}:
    patient, _ = Patient.objects.get_or_create(
        reference=ref, defaults={{"full_name": "Bench patient " + ref}}
    )
    if not Consent.objects.active().filter(patient=patient).exists():
        consent = Consent.objects.create(
            patient=patient, form=ConsentForm.current(), allow_website=True,
            identifiable=True, patient_is_adult=True, signed_at=now - timedelta(days=1),
            signed_by_name=patient.full_name, expires_at=now + timedelta(days=365),
            recorded_by=staff,
        )
        ConsentEvent.record(consent, ConsentEvent.Kind.GRANTED, actor=staff)
"""

# Variables that would point the benchmark at shared infrastructure.
DROPPED_ENV_PREFIXES = ("AWS_",)
DROPPED_ENV = {
    "REDIS_URL",
    "DATABASE_URL",
    "PUBLIC_MEDIA_URL",
    "SERVE_PUBLIC_MEDIA",
    "DJANGO_SETTINGS_MODULE",
    "GALLERY_WATERMARK_TEXT",
    "PHOTO_MAX_BYTES",
    "PHOTO_MAX_PIXELS",
}

UPLOAD_PATH = re.compile(r"/staff/cases/\d+/photos/$")

PHASES = [
    ("login", "log in"),
    ("patient", "find the patient"),
    ("facts", "facts form"),
    ("choose", "choose 4 files"),
    ("upload", "upload 4 photos"),
    ("reload", "reload with pairs"),
    ("submit", "submit for review"),
]


class BenchError(Exception):
    """The flow did not do what a photographer expects: the figures would be meaningless."""


# ---------------------------------------------------------------------------------------
# Photos


@dataclass(frozen=True)
class PhotoSpec:
    name: str
    role: str
    view: str
    orientation: int  # EXIF Orientation of the stored pixels
    heic: bool
    taken: str  # EXIF DateTimeOriginal


def photo_specs(heic: bool) -> list[PhotoSpec]:
    """Rows 0..3 of the upload form: before/front, after/front, before/close_up,
    after/close_up. Before in October, after 14 weeks later (past either treatment's
    minimum interval)."""
    return [
        PhotoSpec("IMG_0001.JPG", "before", "front", 1, False, "2025:10:06 10:02:11"),
        PhotoSpec("IMG_0002.JPG", "after", "front", 1, False, "2026:01:12 10:31:40"),
        PhotoSpec("IMG_0003.JPG", "before", "close_up", 6, False, "2025:10:06 10:04:55"),
        PhotoSpec("IMG_0004.HEIC", "after", "close_up", 1, True, "2026:01:12 10:33:02")
        if heic
        else PhotoSpec("IMG_0004.JPG", "after", "close_up", 6, False, "2026:01:12 10:33:02"),
    ]


def make_photos(folder: Path, specs: list[PhotoSpec]) -> list[Path]:
    """Four 12 MP phone-like photos; see the module docstring."""
    sys.path.insert(0, str(ROOT))
    import pillow_heif
    from PIL import Image, ImageChops

    from gallery.demo_images import skin_pair

    # Drawn at a third of the size (skin_pair is pure Python drawing) and upscaled.
    pairs = {
        "front": skin_pair(seed=11, fitzpatrick=3, concern="acne-scars", size=(1333, 1000)),
        "close_up": skin_pair(seed=12, fitzpatrick=3, concern="acne-scars", size=(1000, 1333)),
    }
    paths = []
    for spec in specs:
        before, after = pairs[spec.view]
        base = before if spec.role == "before" else after
        upright = (4000, 3000) if base.width > base.height else (3000, 4000)
        im = base.resize(upright, Image.Resampling.BICUBIC)
        if spec.orientation == 6:
            # Orientation 6 = "rotate 90° clockwise to view": store it turned anticlockwise.
            im = im.transpose(Image.Transpose.ROTATE_90)
        # Sensor noise makes the file as heavy as a phone's: an upscaled drawing alone
        # compresses to under 1 MB. A phone's HEVC encoder sees denoised pixels, and noise
        # costs HEVC far more bytes than JPEG, hence the smaller sigma for the HEIC.
        sigma = 1.0 if spec.heic else 9.0
        noise = Image.merge("RGB", [Image.effect_noise(im.size, sigma) for _ in range(3)])
        im = ImageChops.add(im, noise, 1.0, -128)  # effect_noise is centred on 128
        exif = Image.Exif()
        exif[0x010F] = "BenchPhone"  # Make
        exif[0x0110] = "BP-12"  # Model
        exif[0x0112] = spec.orientation
        exif_ifd = exif.get_ifd(0x8769)
        exif_ifd[0x9003] = spec.taken  # DateTimeOriginal
        exif_ifd[0x9011] = "+01:00"  # OffsetTimeOriginal
        path = folder / spec.name
        if spec.heic:
            # x265's "ultrafast" preset only shortens the generation (~7 s instead of ~50 s);
            # the server decodes any HEVC stream alike.
            pillow_heif.from_pillow(im).save(
                path, quality=85, exif=exif.tobytes(), enc_params={"preset": "ultrafast"}
            )
        else:
            im.save(path, format="JPEG", quality=90, exif=exif.tobytes())
        paths.append(path)
    return paths


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
        DATABASE_URL=f"sqlite:///{tmp / 'add.sqlite3'}",
        MEDIA_ROOT=str(tmp / "media"),
        CACHE_DIR=str(tmp / "cache"),
        BENCH_STATIC_ROOT=str(tmp / "staticfiles"),
        BENCH_PROBE_LOG=str(tmp / "probe.jsonl"),
        DJANGO_SECRET_KEY="bench-only",
        DJANGO_DEBUG="off",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        # Plain http on loopback: with debug off the settings otherwise redirect to https.
        DJANGO_HTTPS="off",
        DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
        # The temp dir first (the settings wrapper), then the project.
        PYTHONPATH=os.pathsep.join([str(tmp), str(ROOT)]),
        # No __pycache__ written into the repository by the children.
        PYTHONDONTWRITEBYTECODE="1",
        LOG_LEVEL="WARNING",
    )
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 900) -> None:
    """Run one management command; on failure show its output and stop."""
    t0 = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise SystemExit(f"manage.py {args[0]} took over {timeout:.0f} s") from None
    label = args[0] if args[0] == "shell" else " ".join(args)
    print(f"  manage.py {label}: {time.monotonic() - t0:.1f} s", flush=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"manage.py {label} failed ({done.returncode})")


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
def gunicorn(env: dict[str, str], tmp: Path, port: int) -> Iterator[subprocess.Popen]:
    """gunicorn for the duration of the block, with the probe hooks.

    The master leads its own session (process group), so stopping it by that id reaches
    its workers and nothing else. Logs go to files, never to a pipe nobody drains.
    """
    config = tmp / "bench_add_case_gunicorn.py"
    config.write_text(PROBE_SOURCE)
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "clinic.wsgi:application",
        "--config",
        str(config),
        "--workers",
        str(WORKERS),
        "--bind",
        f"{HOST}:{port}",
        "--timeout",
        str(GUNICORN_TIMEOUT),
        # Its default socket path under $HOME would be shared with any other gunicorn.
        "--no-control-socket",
        "--access-logfile",
        str(tmp / "access.log"),
        "--access-logformat",
        "%(p)s %(m)s %(U)s %(s)s %(B)s %(D)sus",
        "--error-logfile",
        str(tmp / "gunicorn.log"),
    ]
    with (tmp / "gunicorn.out").open("ab") as out:
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
        wait_ready(proc, port, tmp / "gunicorn.log")
        yield proc
    finally:
        stop_group(proc)


def wait_ready(proc: subprocess.Popen, port: int, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited ({proc.returncode}):\n{tail(log)}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"gunicorn not answering on {HOST}:{port} after {timeout} s:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def read_probe(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


ACCESS_LINE = re.compile(r"^<(\d+)> (\S+) (\S+) (\d{3}) \S+ (\d+)us$")


def access_log_uploads(path: Path) -> list[float]:
    """Seconds of every upload request in gunicorn's access log (``%(D)s``)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    times = []
    for line in lines:
        m = ACCESS_LINE.match(line)
        if m and m[2] == "POST" and UPLOAD_PATH.search(m[3]):
            times.append(int(m[5]) / 1e6)
    return times


# ---------------------------------------------------------------------------------------
# The browser flow


@dataclass
class ClientUpload:
    """One upload request as Chromium saw it."""

    finished_at: float  # monotonic, when Playwright reported it finished
    total: float  # s, request start to response end (request.timing)


@dataclass
class Rep:
    number: int
    patient: str
    case_id: int = 0
    marks: dict[str, tuple[float, float]] = field(default_factory=dict)  # phase: start, end
    uploads: list[ClientUpload] = field(default_factory=list)
    server: list[dict[str, Any]] = field(default_factory=list)  # probe records
    pair_warnings: int = 0

    def seconds(self, phase: str) -> float:
        start, end = self.marks[phase]
        return end - start

    @property
    def total(self) -> float:
        return self.marks[PHASES[-1][0]][1] - self.marks[PHASES[0][0]][0]

    def phase_of(self, record: dict[str, Any]) -> str:
        """The phase whose window holds the request's start in the worker."""
        for key, _ in PHASES:
            start, end = self.marks[key]
            if start <= record["t0"] < end:
                if key == "upload" and not UPLOAD_PATH.search(record["path"]):
                    # upload.js reloads the page the moment the last upload answers, a few
                    # ms before Playwright reports that request finished.
                    return "reload"
                return key
        return ""

    def in_phase(self, phase: str) -> list[dict[str, Any]]:
        return [r for r in self.server if self.phase_of(r) == phase]


class Clock:
    """Contiguous phases: each starts where the previous one ended."""

    def __init__(self, rep: Rep):
        self.rep = rep
        self.last = time.monotonic()

    def mark(self, phase: str, end: float | None = None) -> None:
        end = time.monotonic() if end is None else end
        self.rep.marks[phase] = (self.last, end)
        self.last = end


def add_case(browser: Any, base: str, rep: Rep, specs: list[PhotoSpec], files: list[Path]) -> None:
    """One photographer's case, phase by phase; raises BenchError when a step goes wrong."""
    context = browser.new_context(viewport=TABLET, has_touch=True)
    context.set_default_timeout(60_000)
    page = context.new_page()
    try:
        _flow(page, base, rep, specs, files)
    finally:
        context.close()


def _flow(page: Any, base: str, rep: Rep, specs: list[PhotoSpec], files: list[Path]) -> None:
    # Listeners first. Handlers only read properties: they run while Playwright waits, and
    # stamp times as the events arrive.
    statuses: dict[Any, int] = {}
    finished: list[tuple[float, Any]] = []
    failed: list[str] = []
    loads: list[float] = []

    def on_response(response: Any) -> None:
        if response.request.method == "POST" and UPLOAD_PATH.search(response.url):
            statuses[response.request] = response.status

    def on_finished(request: Any) -> None:
        if request.method == "POST" and UPLOAD_PATH.search(request.url):
            finished.append((time.monotonic(), request))

    def on_failed(request: Any) -> None:
        if request.method == "POST" and UPLOAD_PATH.search(request.url):
            failed.append(f"{request.url}: {request.failure}")

    page.on("response", on_response)
    page.on("requestfinished", on_finished)
    page.on("requestfailed", on_failed)
    page.on("load", lambda _page: loads.append(time.monotonic()))

    clock = Clock(rep)
    page.goto(f"{base}/staff/login/")
    page.fill("#id_username", DEMO_USERNAME)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/staff/$"))
    clock.mark("login")

    page.click("text=Add a case")
    page.wait_for_url(re.compile(r"/staff/cases/new/$"))
    # A search, as in a clinic with more patients than the first page lists.
    page.fill("#q", rep.patient)
    page.click("form[role=search] button[type=submit]")
    page.wait_for_url(re.compile(r"/staff/cases/new/\?q="))
    page.click(f"ul.worklist a:has-text('{rep.patient}')")
    page.wait_for_url(re.compile(r"/staff/cases/new/\d+/$"))
    clock.mark("patient")

    page.check("input[name=treatment] >> nth=0")
    page.check("input[name=concerns] >> nth=0")
    page.check("input[name=fitzpatrick][value='3']")
    page.check("input[name=skin_type][value=combination]")
    page.fill("#id_needle_depth_mm", "1.5")
    page.fill("#id_session_count", "3")
    page.fill("#id_weeks_after_last_session", "12")
    page.fill("#id_practitioner", "Dr. Tablet")
    page.click("text=Create the case and add photos")
    page.wait_for_url(re.compile(r"/staff/cases/\d+/$"))
    rep.case_id = int(re.findall(r"/staff/cases/(\d+)/$", page.url)[0])
    clock.mark("facts")

    page.set_input_files("#pick-files", [str(f) for f in files])
    rows = page.locator(".upload-row")
    if rows.count() != len(specs):
        raise BenchError(f"{rows.count()} upload rows for {len(specs)} files")
    for i, spec in enumerate(specs):
        row = rows.nth(i)
        if row.locator(".file-name").inner_text() != spec.name:
            raise BenchError(f"row {i} is {row.locator('.file-name').inner_text()!r}")
        row.locator("select[name=role]").select_option(spec.role)
        row.locator("select[name=view]").select_option(spec.view)
    clock.mark("choose")

    # upload.js reloads the page as soon as every row is ok, so the rows cannot be read
    # afterwards: count them as the page unloads, into sessionStorage, and read it back.
    page.evaluate(
        """() => {
        sessionStorage.removeItem('bench-ok');
        addEventListener('pagehide', () => sessionStorage.setItem(
            'bench-ok', String(document.querySelectorAll('.upload-row.ok').length)));
    }"""
    )
    clicked = time.monotonic()
    page.click("#upload-start")
    # Poll rather than wait for a navigation: a failed upload means no reload at all.
    deadline = clicked + 2 * GUNICORN_TIMEOUT + 60
    while len(finished) < len(specs):
        bad = [s for s in statuses.values() if s != 201]
        if bad or failed:
            raise BenchError(f"upload answered {bad} {failed}")
        if time.monotonic() > deadline:
            raise BenchError(f"{len(finished)} of {len(specs)} uploads done after the deadline")
        page.wait_for_timeout(20)
    bad = [s for s in statuses.values() if s != 201]
    if bad:
        raise BenchError(f"upload answered {bad}")
    upload_end = max(at for at, _ in finished)
    for at, request in finished:
        # responseEnd counts from the request's own startTime; -1 when unknown.
        end = request.timing["responseEnd"]
        rep.uploads.append(ClientUpload(at, end / 1000 if end >= 0 else at - clicked))
    clock.mark("upload", upload_end)

    while not [t for t in loads if t > clicked]:
        if time.monotonic() > deadline:
            raise BenchError("the page did not reload after the uploads")
        page.wait_for_timeout(20)
    page.wait_for_load_state("load")
    if page.evaluate("sessionStorage.getItem('bench-ok')") != str(len(specs)):
        raise BenchError("not every upload row was ok before the reload")
    if page.locator(".staff-pair").count() != 2:
        raise BenchError(f"{page.locator('.staff-pair').count()} pairs shown, expected 2")
    sliders = page.locator(".compare-range")
    sliders.nth(1).wait_for(state="visible")  # compare.js unhides them
    if sliders.count() != 2:
        raise BenchError(f"{sliders.count()} sliders, expected 2")
    loaded = page.evaluate(
        "[...document.querySelectorAll('.compare-frame img')]"
        ".filter(i => i.complete && i.naturalWidth > 0).length"
    )
    if loaded != 4:
        raise BenchError(f"{loaded} of 4 staff previews loaded")
    rep.pair_warnings = page.locator(".staff-pair .warnings li").count()
    clock.mark("reload")

    # The same URL before and after (POST, redirect, GET): wait for the navigation itself.
    with page.expect_navigation():
        page.click("text=Submit for review")
    if not page.get_by_text("Sent for review.").is_visible():
        messages = page.locator(".messages").all_inner_texts()
        raise BenchError(f"not submitted: {messages}")
    clock.mark("submit")


# ---------------------------------------------------------------------------------------
# Report


def print_table(rows: list[list[str]], header: list[str], indent: str = "  ") -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(indent + line.format(*header))
    print(indent + "  ".join("-" * w for w in widths))
    for row in rows:
        print(indent + line.format(*row))


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def step(record: dict[str, Any], name: str) -> tuple[float, int]:
    seconds, count = record["steps"].get(name, (0.0, 0))
    return seconds, count


def upload_breakdown(record: dict[str, Any]) -> dict[str, float]:
    """Split one upload request's time in the worker into the pipeline's steps."""
    total = record["t1"] - record["t0"]
    validate, _ = step(record, "validate_photo")
    add, _ = step(record, "add_photo")
    build, _ = step(record, "build_renditions")
    render, renders = step(record, "render_crop")
    sync, _ = step(record, "sync_public_files")
    return {
        "total": total,
        "cpu": record["cpu"],
        "validate": validate,
        "store": add - validate,  # the original into private storage, the row
        "render": render,
        "renders": renders,
        "build_other": build - render - sync,  # rendition files written, rows switched
        "sync": sync,
        "other": total - add - build,  # body upload and parsing, auth, the JSON answer
    }


def report(reps: list[Rep], files: list[Path], specs: list[PhotoSpec], access: list[float]) -> None:
    names = [f"rep {r.number}" for r in reps]
    print()
    print("Photos (the same four files in every rep):")
    for spec, path in zip(specs, files, strict=True):
        kind = "HEIC" if spec.heic else "JPEG"
        print(
            f"  {spec.name:<14} {kind}  {path.stat().st_size / 1e6:5.2f} MB  "
            f"{spec.role}/{spec.view}, EXIF Orientation {spec.orientation}"
        )
    total_mb = sum(p.stat().st_size for p in files) / 1e6
    print(f"  together {total_mb:.2f} MB")

    print()
    print("Time to add a case with four photos (s, wall clock in the browser):")
    rows = []
    for key, label in PHASES:
        values = [r.seconds(key) for r in reps]
        rows.append([label, f"{median(values):.2f}", *(f"{v:.2f}" for v in values)])
    totals = [r.total for r in reps]
    rows.append(["TOTAL", f"{median(totals):.2f}", *(f"{v:.2f}" for v in totals)])
    print_table(rows, ["phase", "median", *names])

    print()
    print("Server time per phase: s in the gunicorn workers, wall / CPU, summed over the phase's")
    print("requests (the uploads run 2 at a time on the 2 workers: their sum exceeds the phase):")
    rows = []
    for key, label in PHASES:
        walls = [sum(x["t1"] - x["t0"] for x in r.in_phase(key)) for r in reps]
        cpus = [sum(x["cpu"] for x in r.in_phase(key)) for r in reps]
        counts = "/".join(str(len(r.in_phase(key))) for r in reps)
        cells = [f"{w:.2f} / {c:.2f}" for w, c in zip(walls, cpus, strict=True)]
        rows.append([label, counts, f"{median(walls):.2f} / {median(cpus):.2f}", *cells])
    print_table(rows, ["phase", "requests", "median", *names])

    print()
    print("Upload requests (s). start: when the worker took the request, after the click on")
    print("Upload; server: wall clock in the worker, cpu: the worker's CPU; the steps are wall")
    print("clock; renders: render_crop calls, one per photo rendered (each upload rebuilds every")
    print("photo of the case so far); other: receiving and parsing the body, auth, the JSON.")
    for rep in reps:
        clicked = rep.marks["upload"][0]
        uploads = sorted(
            (r for r in rep.in_phase("upload") if UPLOAD_PATH.search(r["path"])),
            key=lambda r: r["t0"],
        )
        rows = []
        for record in uploads:
            b = upload_breakdown(record)
            who = record.get("upload", {})
            rows.append(
                [
                    who.get("name", "?"),
                    f"{who.get('role', '?')}/{who.get('view', '?')}",
                    str(record.get("status")),
                    f"+{record['t0'] - clicked:.2f}",
                    f"{b['total']:.2f}",
                    f"{record['cpu']:.2f}",
                    f"{b['validate']:.2f}",
                    f"{b['store']:.2f}",
                    f"{b['render']:.2f} ({b['renders']})",
                    f"{b['build_other']:.2f}",
                    f"{b['sync']:.2f}",
                    f"{b['other']:.2f}",
                ]
            )
        client = ", ".join(
            f"{u.total:.2f}" for u in sorted(rep.uploads, key=lambda u: u.finished_at)
        )
        print(f"  rep {rep.number}, case {rep.case_id}, patient {rep.patient}:")
        print_table(
            rows,
            [
                "file",
                "role/view",
                "HTTP",
                "start",
                "server",
                "cpu",
                "validate",
                "store",
                "render (renders)",
                "rend. files",
                "sync",
                "other",
            ],
            indent="    ",
        )
        print(f"    as Chromium saw them (request start to response end): {client}")
        if rep.pair_warnings:
            print(f"    the reloaded page shows {rep.pair_warnings} comparability warning(s)")

    # Where the upload phase goes, summed over the four requests, median over the reps.
    parts: dict[str, list[float]] = {}
    for rep in reps:
        sums: dict[str, float] = {}
        for record in rep.in_phase("upload"):
            if UPLOAD_PATH.search(record["path"]):
                for k, v in upload_breakdown(record).items():
                    sums[k] = sums.get(k, 0.0) + v
        for k, v in sums.items():
            parts.setdefault(k, []).append(v)
    if parts:
        total = median(parts["total"])
        print()
        print("Upload phase, summed over its four requests (median of the reps):")
        for key, label in (
            ("validate", "validate_photo"),
            ("store", "store original + row"),
            ("render", "render_crop"),
            ("build_other", "write rendition files, switch rows"),
            ("sync", "sync_public_files"),
            ("other", "body, parsing, auth, JSON"),
        ):
            value = median(parts[key])
            share = value / total if total else float("nan")
            print(f"  {label:<36} {value:6.2f} s  {share:4.0%}")
        print(f"  {'request time in the workers':<36} {total:6.2f} s")
        print(f"  {'CPU of the workers for them':<36} {median(parts['cpu']):6.2f} s")
        print(f"  render_crop calls for 4 photos: {median(parts['renders']):.0f}")
    probed = [
        r["t1"] - r["t0"]
        for rep in reps
        for r in rep.in_phase("upload")
        if UPLOAD_PATH.search(r["path"])
    ]
    print(
        f"  cross-check, gunicorn's access log: {len(access)} upload requests, "
        f"{sum(access):.2f} s (the hooks: {len(probed)}, {sum(probed):.2f} s)"
    )


# ---------------------------------------------------------------------------------------
# In-process profile (a child process with the bench settings and database)


def profile_child(paths: list[Path]) -> int:
    """Time the project's pipeline on the four files directly, no HTTP, no browser."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User

    from consent.models import Consent, Patient
    from gallery import images
    from gallery.models import Case, Concern, Treatment
    from gallery.publication import add_photo, build_renditions

    heic = any(p.suffix.lower() == ".heic" for p in paths)
    specs = photo_specs(heic)
    datas = [p.read_bytes() for p in paths]
    limits = {"max_bytes": settings.PHOTO_MAX_BYTES, "max_pixels": settings.PHOTO_MAX_PIXELS}

    def best(fn: Any, repeat: int = 3) -> float:
        # CPU time (all threads of this process), best of a few: the wall clock of a step
        # on a busy machine measures the other processes as much as the step.
        times = []
        for _ in range(repeat):
            c0 = time.process_time()
            fn()
            times.append(time.process_time() - c0)
        return min(times)

    print()
    print(
        "In-process profile: the project's code on the same files "
        f"(CPU s, best of 3; load average {loadavg()}):"
    )
    rows = []
    for spec, data in zip(specs, datas, strict=True):
        facts = images.validate_photo(io.BytesIO(data), spec.name, **limits)
        sha = best(lambda d=data: hashlib.sha256(d).hexdigest())
        validate = best(
            lambda d=data, n=spec.name: images.validate_photo(io.BytesIO(d), n, **limits)
        )
        # The crop and sizes _render_group would use for the photo on its own.
        aspect = facts.width / facts.height
        crop = images.centred_crop(facts.width, facts.height, aspect)
        sizes = images.pair_output_sizes([(facts.width, facts.height)], aspect)

        def render(
            formats: tuple[str, ...], d: bytes = data, c: Any = crop, s: Any = sizes
        ) -> float:
            return best(lambda: images.render_crop(io.BytesIO(d), c, s, formats=formats))

        base = render(())  # decode, crop, resize, orient, sRGB: no encoder
        encode = {fmt: max(0.0, render((fmt,)) - base) for fmt in images.RENDITION_FORMATS}
        full = render(images.RENDITION_FORMATS)
        rows.append(
            [
                spec.name,
                f"{facts.width}x{facts.height}",
                f"{sha:.3f}",
                f"{validate:.2f}",
                f"{base:.2f}",
                *(f"{encode[f]:.2f}" for f in images.RENDITION_FORMATS),
                f"{full:.2f}",
            ]
        )
    widths = "/".join(str(w) for w, _ in sizes)
    print_table(
        rows,
        [
            "file",
            "upright",
            "sha256",
            "validate",
            "decode+resize",
            *(f"+{f} x3" for f in images.RENDITION_FORMATS),
            "render_crop",
        ],
    )
    print(
        f"  render_crop = one photo's renditions: {widths} px wide in "
        f"{', '.join(images.RENDITION_FORMATS)} ({len(sizes) * 3} files); "
        "+format: that encoder's time for the sizes"
    )

    patient = Patient.objects.get(reference=PROFILE_PATIENT)
    consent = Consent.objects.active().filter(patient=patient).first()
    user = User.objects.get(username=DEMO_USERNAME)
    treatment = Treatment.objects.order_by("slug").first()
    concern = Concern.objects.order_by("name").first()

    def new_case() -> Case:
        case = Case.objects.create(
            treatment=treatment,
            fitzpatrick=3,
            skin_type=Case.SkinType.COMBINATION,
            needle_depth_mm="1.50",
            session_count=3,
            weeks_after_last_session=12,
            patient=patient,
            consent=consent,
            practitioner="Dr. Profile",
            created_by=user,
        )
        case.concerns.set([concern])
        return case

    print()
    print("The four uploads as photo_upload runs them, one after another (s, wall / CPU):")
    case = new_case()
    rows = []
    adds, builds, build_cpus = [], [], []
    for n, (spec, data) in enumerate(zip(specs, datas, strict=True), 1):
        t0, c0 = time.monotonic(), time.process_time()
        add_photo(case, spec.role, spec.view, io.BytesIO(data), spec.name)
        t1, c1 = time.monotonic(), time.process_time()
        build_renditions(case)  # what build_case_renditions.enqueue does, immediately
        t2, c2 = time.monotonic(), time.process_time()
        adds.append(t1 - t0)
        builds.append(t2 - t1)
        build_cpus.append(c2 - c1)
        rows.append(
            [
                f"{n}. {spec.name}",
                f"{t1 - t0:.2f} / {c1 - c0:.2f}",
                f"{t2 - t1:.2f} / {c2 - c1:.2f}",
                str(n),
            ]
        )
    renders = sum(range(1, len(specs) + 1))
    rows.append(
        ["sum", f"{sum(adds):.2f}", f"{sum(builds):.2f} / {sum(build_cpus):.2f}", str(renders)]
    )
    print_table(rows, ["upload", "add_photo", "build_renditions", "photos rendered"])

    case = new_case()
    for spec, data in zip(specs, datas, strict=True):
        add_photo(case, spec.role, spec.view, io.BytesIO(data), spec.name)
    t0, c0 = time.monotonic(), time.process_time()
    build_renditions(case)
    once, once_cpu = time.monotonic() - t0, time.process_time() - c0
    print(
        f"  one build_renditions after all four uploads instead: {once:.2f} / {once_cpu:.2f} s "
        f"({len(specs)} photos rendered): {sum(build_cpus) / once_cpu:.1f}x less CPU"
    )
    return 0


def run_profile(env: dict[str, str], files: list[Path], timeout: float) -> None:
    try:
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--profile-child", *map(str, files)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        print(f"  the in-process profile took over {timeout:.0f} s and was stopped")
        return
    if done.returncode != 0:
        print(f"  the in-process profile failed ({done.returncode})")


# ---------------------------------------------------------------------------------------
# Main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="cases to add (>= 1)")
    parser.add_argument("--no-heic", action="store_true", help="four JPEGs, no HEIC")
    parser.add_argument("--no-profile", action="store_true", help="skip the in-process profile")
    parser.add_argument(
        "--workdir", type=Path, help="keep the temp files (database, logs, photos) here"
    )
    parser.add_argument("--profile-child", nargs="+", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.profile_child:
        return profile_child(args.profile_child)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"Chromium not found at {CHROMIUM}: install Debian's chromium package")

    # SIGTERM takes the same path as Ctrl-C, so the finally blocks stop gunicorn/Chromium.
    signal.signal(signal.SIGTERM, interrupted)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return run(args, args.workdir.resolve())
    with tempfile.TemporaryDirectory(prefix="bench-add-case-") as tmp:
        return run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> int:
    started = time.monotonic()
    (tmp / f"{SETTINGS_MODULE}.py").write_text(SETTINGS_SOURCE)
    env = bench_env(tmp)
    # Lines of an earlier run in a reused --workdir would be mixed in: start empty.
    Path(env["BENCH_PROBE_LOG"]).write_bytes(b"")
    (tmp / "access.log").write_bytes(b"")
    print(f"Work dir {tmp}; {os.cpu_count()} CPUs; load average {loadavg()}")
    print("Setup:", flush=True)
    manage(env, "migrate", "--noinput")
    # The demo login with its known password is made only with debug on.
    manage({**env, "DJANGO_DEBUG": "on"}, "seed_demo", "--count", str(DEMO_COUNT))
    manage(env, "collectstatic", "--noinput")
    # A token per run: a reused --workdir gets new patients (a new case on a new patient).
    token = secrets.token_hex(2).upper()
    refs = [f"BENCH-{token}-{n:02d}" for n in range(1, args.reps + 1)]
    code = PATIENTS_CODE.format(user=DEMO_USERNAME, refs=[*refs, PROFILE_PATIENT])
    manage(env, "shell", "-c", code)

    t0 = time.monotonic()
    specs = photo_specs(heic=not args.no_heic)
    (tmp / "photos").mkdir(exist_ok=True)
    files = make_photos(tmp / "photos", specs)
    print(f"  four 12 MP photos generated: {time.monotonic() - t0:.1f} s", flush=True)

    from playwright.sync_api import sync_playwright

    reps: list[Rep] = []
    error = ""
    port = free_port()
    with gunicorn(env, tmp, port) as server:
        base = f"http://{HOST}:{port}"
        print(f"gunicorn on {base}: {WORKERS} workers, master pid {server.pid}", flush=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                print(f"Chromium {browser.version}, {TABLET['width']}x{TABLET['height']} touch")
                for n, ref in enumerate(refs, 1):
                    rep = Rep(n, ref)
                    try:
                        add_case(browser, base, rep, specs, files)
                    except Exception as exc:  # report what was measured, then stop
                        error = f"rep {n} failed: {type(exc).__name__}: {exc}"
                        break
                    reps.append(rep)
                    print(
                        f"  rep {n}: case {rep.case_id} added in {rep.total:.1f} s "
                        f"(load average {loadavg()})",
                        flush=True,
                    )
            finally:
                browser.close()
    # gunicorn stopped gracefully: every request's probe line has been written.
    records = read_probe(Path(env["BENCH_PROBE_LOG"]))
    for rep in reps:
        first, last = rep.marks[PHASES[0][0]][0], rep.marks[PHASES[-1][0]][1]
        rep.server = [r for r in records if first <= r["t0"] < last]

    if reps:
        report(reps, files, specs, access_log_uploads(tmp / "access.log"))
    if error:
        print()
        print(error)
        print(tail(tmp / "gunicorn.log"))
        return 1
    if not args.no_profile:
        run_profile(env, files, timeout=900)
    print()
    print(f"Benchmark run: {time.monotonic() - started:.0f} s; load average {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
