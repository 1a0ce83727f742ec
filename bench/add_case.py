#!/usr/bin/env python
"""Time a photographer adding a case with four 12 MP photos through the staff UI, phase by
phase, in Chromium, with the server's time per request split into the photo pipeline's
steps. See bench/README.md."""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import app

# The parent imports gallery.demo_images to draw the photos: no __pycache__ in the repo.
sys.dont_write_bytecode = True

WORKERS = 2
GUNICORN_TIMEOUT = 120  # s; a request over this is killed, and the benchmark says so
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    *("--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"),
    *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
    "--disable-quic",
]
TABLET = {"width": 820, "height": 1180}
DEMO_USERNAME, DEMO_PASSWORD = "demo", "demo-gallery-2026"  # made by seed_demo

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
    """Four 12 MP phone-like photos: a skin_pair drawing upscaled, with noise and EXIF."""
    sys.path.insert(0, str(app.ROOT))
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


def read_probe(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


ACCESS_LINE = re.compile(r"^<(\d+)> \"(\S+) (\S+) HTTP/[\d.]+\" (\d{3}) \S+ (\d+)us$")


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


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# Steps of an upload request in the worker: (key, label). store: the original into private
# storage and the row; files: rendition files written, rows switched; other: receiving
# and parsing the body, auth, the JSON answer.
STEPS = [("validate", "validate_photo"), ("store", "store original + row")]
STEPS += [("render", "render_crop"), ("files", "write rendition files, switch rows")]
STEPS += [("sync", "sync_public_files"), ("other", "body, parsing, auth, JSON")]


def breakdown(record: dict[str, Any]) -> dict[str, float]:
    """Split one upload request's time in the worker into the pipeline's steps."""
    t = {k: v[0] for k, v in record["steps"].items()}
    total, add, build = (
        record["t1"] - record["t0"],
        t.get("add_photo", 0),
        t.get("build_renditions", 0),
    )
    validate, render, sync = (
        t.get("validate_photo", 0),
        t.get("render_crop", 0),
        t.get("sync_public_files", 0),
    )
    renders = record["steps"].get("render_crop", (0, 0))[1]
    return {"total": total, "cpu": record["cpu"], "validate": validate, "store": add - validate} | {
        "render": render,
        "renders": renders,
        "files": build - render - sync,
        "sync": sync,
        "other": total - add - build,
    }


def report(reps: list[Rep], files: list[Path], specs: list[PhotoSpec], access: list[float]) -> None:
    names = [f"rep {r.number}" for r in reps]
    print("\nPhotos (the same four files in every rep):")
    for spec, path in zip(specs, files, strict=True):
        kind, mb = "HEIC" if spec.heic else "JPEG", path.stat().st_size / 1e6
        print(
            f"  {spec.name:<14} {kind}  {mb:5.2f} MB  {spec.role}/{spec.view}, "
            f"EXIF Orientation {spec.orientation}"
        )
    print(f"  together {sum(p.stat().st_size for p in files) / 1e6:.2f} MB")

    print("\nTime to add a case with four photos (s, wall clock in the browser):")
    rows = []
    for label, values in [(label, [r.seconds(key) for r in reps]) for key, label in PHASES] + [
        ("TOTAL", [r.total for r in reps])
    ]:
        rows.append([label, f"{median(values):.2f}", *(f"{v:.2f}" for v in values)])
    app.print_table(rows, ["phase", "median", *names], "  ")

    print("\nServer time per phase: s in the gunicorn workers, wall / CPU, summed over the phase's")
    print("requests (the uploads run 2 at a time on the 2 workers: their sum exceeds the phase):")
    rows = []
    for key, label in PHASES:
        walls = [sum(x["t1"] - x["t0"] for x in r.in_phase(key)) for r in reps]
        cpus = [sum(x["cpu"] for x in r.in_phase(key)) for r in reps]
        counts = "/".join(str(len(r.in_phase(key))) for r in reps)
        cells = [f"{w:.2f} / {c:.2f}" for w, c in zip(walls, cpus, strict=True)]
        rows.append([label, counts, f"{median(walls):.2f} / {median(cpus):.2f}", *cells])
    app.print_table(rows, ["phase", "requests", "median", *names], "  ")

    print(
        "\nUpload requests (s). start: when the worker took the request, after the click on Upload;"
    )
    print("server: wall clock in the worker; cpu: the worker's CPU; the steps are wall clock;")
    print("renders: render_crop calls (each upload rebuilds every photo of the case so far).")
    parts: dict[str, list[float]] = {}
    for rep in reps:
        uploads = sorted(
            (r for r in rep.in_phase("upload") if UPLOAD_PATH.search(r["path"])),
            key=lambda r: r["t0"],
        )
        rows, sums = [], dict.fromkeys(breakdown(uploads[0]) if uploads else {}, 0.0)
        for record in uploads:
            b, who = breakdown(record), record.get("upload", {})
            sums = {k: sums[k] + v for k, v in b.items()}
            rows.append(
                [
                    who.get("name", "?"),
                    f"{who.get('role')}/{who.get('view')}",
                    str(record.get("status")),
                ]
                + [
                    f"+{record['t0'] - rep.marks['upload'][0]:.2f}",
                    f"{b['total']:.2f}",
                    f"{b['cpu']:.2f}",
                ]
                + [
                    f"{b[k]:.2f}" + (f" ({b['renders']})" if k == "render" else "")
                    for k, _ in STEPS
                ]
            )
        for k, v in sums.items():
            parts.setdefault(k, []).append(v)
        print(f"  rep {rep.number}, case {rep.case_id}, patient {rep.patient}:")
        app.print_table(
            rows,
            ["file", "role/view", "HTTP", "start", "server", "cpu", *(k for k, _ in STEPS)],
            "    ",
        )
        client = ", ".join(
            f"{u.total:.2f}" for u in sorted(rep.uploads, key=lambda u: u.finished_at)
        )
        print(f"    as Chromium saw them (request start to response end): {client}")
        if rep.pair_warnings:
            print(f"    the reloaded page shows {rep.pair_warnings} comparability warning(s)")
    if parts:
        total = median(parts["total"])
        print("\nUpload phase, summed over its four requests (median of the reps):")
        for key, label in STEPS:
            print(f"  {label:<36} {median(parts[key]):6.2f} s  {median(parts[key]) / total:4.0%}")
        print(f"  {'request time in the workers':<36} {total:6.2f} s")
        print(f"  {'CPU of the workers for them':<36} {median(parts['cpu']):6.2f} s")
        print(f"  render_crop calls for 4 photos: {median(parts['renders']):.0f}")
    n_probed = sum(
        1 for rep in reps for r in rep.in_phase("upload") if UPLOAD_PATH.search(r["path"])
    )
    print(
        f"  cross-check, gunicorn's access log: {len(access)} upload requests, {sum(access):.2f} s "
        f"(the hooks: {n_probed}, {sum(parts.get('total', [])):.2f} s)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="cases to add (>= 1)")
    parser.add_argument("--no-heic", action="store_true", help="four JPEGs, no HEIC")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"Chromium not found at {CHROMIUM}: install Debian's chromium package")
    app.on_sigterm()
    with tempfile.TemporaryDirectory(prefix="bench-add-case-") as tmp:
        return run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> int:
    started = time.monotonic()
    # django-axes stays on, as in production.
    env = app.environment(tmp, BENCH_PROBE_LOG=str(tmp / "probe.jsonl"))
    print(
        f"Work dir {tmp}; {os.cpu_count()} CPUs; load average {app.loadavg()}\nSetup:", flush=True
    )
    app.setup(env)
    # A new case on a new patient per rep.
    refs = [f"BENCH-{secrets.token_hex(2).upper()}-{n:02d}" for n in range(1, args.reps + 1)]
    app.manage(env, "shell", "-c", PATIENTS_CODE.format(user=DEMO_USERNAME, refs=refs))
    t0 = time.monotonic()
    specs = photo_specs(heic=not args.no_heic)
    (tmp / "photos").mkdir()
    files = make_photos(tmp / "photos", specs)
    print(f"  four 12 MP photos generated: {time.monotonic() - t0:.1f} s", flush=True)

    from playwright.sync_api import sync_playwright

    reps: list[Rep] = []
    error = ""
    config = tmp / "bench_add_case_gunicorn.py"
    config.write_text(PROBE_SOURCE)
    options = ("--config", str(config), "--timeout", str(GUNICORN_TIMEOUT))
    with app.gunicorn(env, tmp, *options, workers=WORKERS) as server:
        print(f"gunicorn on {server.base}: {WORKERS} workers, master pid {server.proc.pid}")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                print(f"Chromium {browser.version}, {TABLET['width']}x{TABLET['height']} touch")
                for n, ref in enumerate(refs, 1):
                    rep = Rep(n, ref)
                    try:
                        add_case(browser, server.base, rep, specs, files)
                    except Exception as exc:  # report what was measured, then stop
                        error = f"rep {n} failed: {type(exc).__name__}: {exc}"
                        break
                    reps.append(rep)
                    print(f"  rep {n}: case {rep.case_id} in {rep.total:.1f} s ({app.loadavg()})")
            finally:
                browser.close()
    # gunicorn stopped gracefully: every request's probe line has been written.
    records = read_probe(tmp / "probe.jsonl")
    for rep in reps:
        first, last = rep.marks[PHASES[0][0]][0], rep.marks[PHASES[-1][0]][1]
        rep.server = [r for r in records if first <= r["t0"] < last]
    if reps:
        report(reps, files, specs, access_log_uploads(tmp / "access.log"))
    if error:
        print(f"\n{error}\n{app.tail(tmp / 'gunicorn.log')}")
        return 1
    print(f"\nBenchmark run: {time.monotonic() - started:.0f} s; load average {app.loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
