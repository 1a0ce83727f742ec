#!/usr/bin/env python
"""Time a photographer adding a case with four 12 MP photos through the staff UI, phase by
phase, in Chromium, with the server's time per request split into the photo pipeline's
steps. See bench/README.md."""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import app

sys.dont_write_bytecode = True  # the photos are drawn with gallery.demo_images
WORKERS = 2
TIMEOUT = 120  # a request over the timeout is killed, and the benchmark says so
UPLOAD_PATH = re.compile(r"/staff/cases/\d+/photos/$")
PHASES = {
    "login": "log in",
    "patient": "find the patient",
    "facts": "facts form",
    "choose": "choose 4 files",
    "upload": "upload 4 photos",
    "reload": "reload with pairs",
    "submit": "submit for review",
    "publish": "a reviewer publishes",  # not the photographer's: the public set is made here
}
# Rows of the upload form: name, role, view, EXIF Orientation, DateTimeOriginal. Before in
# October, after 14 weeks later; the close-up before is stored landscape with Orientation 6,
# as phones do; the close-up after is a HEIC (pixels upright) unless --no-heic.
PHOTOS = [
    ("IMG_0001.JPG", "before", "front", 1, "2025:10:06 10:02:11"),
    ("IMG_0002.JPG", "after", "front", 1, "2026:01:12 10:31:40"),
    ("IMG_0003.JPG", "before", "close_up", 6, "2025:10:06 10:04:55"),
    ("IMG_0004.JPG", "after", "close_up", 6, "2026:01:12 10:33:02"),
]
# Steps of an upload request in the worker. store: the original into private storage and
# the row; files: rendition files written, rows switched; other: the body, auth, the JSON.
STEPS = {
    "validate": "validate_photo",
    "store": "store original + row",
    "render": "render_crop",
    "files": "write rendition files, switch rows",
    "sync": "sync_public_files",
    "other": "body, parsing, auth, JSON",
}

# A gunicorn config file: hooks that time every request in the worker and, by replacing
# the module attributes the view looks up at call time, the pipeline's steps inside it.
# time.monotonic() is one clock for every process, so each request falls in a phase.
PROBE = """import functools, json, os, time

current = None  # the request this sync worker is handling


def timed(step, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            if current is not None:
                seconds, count = current["steps"].get(step, (0.0, 0))
                current["steps"][step] = (seconds + time.monotonic() - t0, count + 1)
    return wrapper


def post_worker_init(worker):
    from gallery import images, publication, staff

    images.validate_photo = timed("validate_photo", images.validate_photo)
    images.render_crop = timed("render_crop", images.render_crop)
    add_photo = timed("add_photo", staff.add_photo)

    def named(case, role, view, fp, name):
        current["upload"] = {"name": name, "role": role, "view": view}
        return add_photo(case, role, view, fp, name)

    staff.add_photo = named
    for name in ("build_renditions", "sync_public_files"):
        setattr(publication, name, timed(name, getattr(publication, name)))


def pre_request(worker, req):
    global current  # CPU too: unlike the wall clock, barely moved by other load
    current = {"path": req.path, "t0": time.monotonic(), "c0": time.process_time(), "steps": {}}


def post_request(worker, req, environ, resp):
    global current
    record, current = current, None
    record |= {"t1": time.monotonic(), "cpu": time.process_time() - record.pop("c0")}
    with open(os.environ["BENCH_PROBE_LOG"], "a") as out:
        out.write(json.dumps(record | {"status": resp.status_code}) + "\\n")
"""


def make_photos(folder: Path, heic: bool) -> list[Path]:
    """Four 12 MP phone photos with camera EXIF; the last one a HEIC unless ``heic`` is off."""
    sys.path.insert(0, str(app.ROOT))
    import pillow_heif
    from PIL import Image

    paths = []
    for n, (name, role, view, orientation, taken) in enumerate(PHOTOS):
        is_heic = heic and n == 3
        size = (4000, 3000) if view == "front" else (3000, 4000)
        # A phone's HEVC encoder sees denoised pixels, and noise costs HEVC far more bytes.
        seed = 11 if view == "front" else 12
        im = app.camera_photo(size, seed, after=role == "after", grain=1 if is_heic else 10)
        if is_heic:  # x265's fastest preset: ~7 s instead of ~50 s, decoded alike
            path = folder / name.replace(".JPG", ".HEIC")
            heif = pillow_heif.from_pillow(im)
            exif = app.camera_exif(1, taken)
            heif.save(path, quality=85, exif=exif, enc_params={"preset": "ultrafast"})
        else:
            if orientation == 6:  # "rotate 90° clockwise to view"
                im = im.transpose(Image.Transpose.ROTATE_90)
            path = folder / name
            im.save(path, format="JPEG", quality=90, exif=app.camera_exif(orientation, taken))
        paths.append(path)
    return paths


class BenchError(Exception):
    """The flow did not do what a photographer expects: the figures would be meaningless."""


@dataclass
class Rep:
    number: int
    patient: str
    case_id: int = 0
    marks: dict[str, tuple[float, float]] = field(default_factory=dict)  # phase: start, end
    client: list[tuple[float, float]] = field(default_factory=list)  # uploads: finished, s
    server: list[dict[str, Any]] = field(default_factory=list)  # probe records
    pair_warnings: int = 0
    started: float = 0.0

    def mark(self, phase: str, end: float | None = None) -> None:
        """Contiguous phases: each starts where the previous one ended."""
        start = self.marks[list(self.marks)[-1]][1] if self.marks else self.started
        self.marks[phase] = (start, time.monotonic() if end is None else end)

    @property
    def total(self) -> float:
        return self.marks["submit"][1] - self.marks["login"][0]  # the photographer's part

    def in_phase(self, phase: str) -> list[dict[str, Any]]:
        """Requests that started in the worker during the phase. upload.js reloads the page
        the moment the last upload answers, a few ms before Playwright reports it."""

        def phase_of(r: dict[str, Any]) -> str:
            key = next((k for k, (a, b) in self.marks.items() if a <= r["t0"] < b), "")
            return "reload" if key == "upload" and not UPLOAD_PATH.search(r["path"]) else key

        return [r for r in self.server if phase_of(r) == phase]


def flow(page: Any, base: str, rep: Rep, files: list[Path]) -> None:
    """One photographer's case, phase by phase; raises BenchError when a step goes wrong."""
    statuses: dict[Any, int] = {}
    finished: list[tuple[float, Any]] = []
    loads: list[float] = []

    def is_upload(request: Any) -> bool:
        return request.method == "POST" and bool(UPLOAD_PATH.search(request.url))

    # The handlers stamp times as the events arrive, while Playwright waits.
    def on_response(response: Any) -> None:
        if is_upload(response.request):
            statuses[response.request] = response.status

    def on_finished(request: Any) -> None:
        if is_upload(request):
            finished.append((time.monotonic(), request))

    def on_failed(request: Any) -> None:
        if is_upload(request):
            statuses[request] = 0

    page.on("response", on_response)
    page.on("requestfinished", on_finished)
    page.on("requestfailed", on_failed)
    page.on("load", lambda _: loads.append(time.monotonic()))
    rep.started = time.monotonic()
    page.goto(f"{base}/staff/login/")
    page.fill("#id_username", app.DEMO_USER)
    page.fill("#id_password", app.DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/staff/$"))
    rep.mark("login")

    page.click("text=Add a case")
    page.wait_for_url(re.compile(r"/staff/cases/new/$"))
    page.fill("#q", rep.patient)  # a search, as in a clinic with many patients
    page.click("form[role=search] button[type=submit]")
    page.wait_for_url(re.compile(r"/staff/cases/new/\?q="))
    page.click(f"ul.worklist a:has-text('{rep.patient}')")
    page.wait_for_url(re.compile(r"/staff/cases/new/\d+/$"))
    rep.mark("patient")

    page.check("input[name=treatment] >> nth=0")
    page.check("input[name=concerns] >> nth=0")
    page.check("input[name=fitzpatrick][value='3']")
    page.check("input[name=skin_type][value=combination]")
    # Two sessions, the first on two zones, added with the page's own buttons: on the day of
    # the before photos and 4 weeks later (the after photos' EXIF date is 10 weeks after).
    page.fill("#id_sessions-0-performed_on", "2025-10-06")
    page.select_option("#id_sessions-0-zones-0-zone", "cheeks")
    page.fill("#id_sessions-0-zones-0-needle_depth_mm", "1.5")
    page.click(".session >> nth=0 >> [data-add-zone]")
    page.select_option("#id_sessions-0-zones-1-zone", "forehead")
    page.fill("#id_sessions-0-zones-1-needle_depth_mm", "0.75")
    page.click("[data-add-session]")
    page.fill("#id_sessions-1-performed_on", "2025-11-03")
    page.select_option("#id_sessions-1-zones-0-zone", "cheeks")
    page.fill("#id_sessions-1-zones-0-needle_depth_mm", "1.5")
    page.fill("#id_weeks_after_entered", "12")
    # The demo's first location and a practitioner there (seed_demo: Dr. Amara Okafor).
    page.select_option("#id_location", index=1)
    page.select_option(
        "#id_practitioner", label="Dr. Amara Okafor, Consultant dermatologist (Demo Skin Clinic)"
    )
    page.click("text=Create the case and add photos")
    page.wait_for_url(re.compile(r"/staff/cases/\d+/$"))
    rep.case_id = int(re.findall(r"/staff/cases/(\d+)/$", page.url)[0])
    rep.mark("facts")

    page.set_input_files("#pick-files", [str(f) for f in files])
    rows = page.locator(".upload-row")
    for i, (path, (_, role, view, *_)) in enumerate(zip(files, PHOTOS, strict=True)):
        if rows.nth(i).locator(".file-name").inner_text() != path.name:
            raise BenchError(f"upload row {i} is not {path.name}")
        rows.nth(i).locator("select[name=role]").select_option(role)
        rows.nth(i).locator("select[name=view]").select_option(view)
    rep.mark("choose")

    # upload.js reloads the page once every row is ok: count them as the page unloads.
    page.evaluate("""() => { sessionStorage.removeItem('ok'); addEventListener('pagehide', () =>
        sessionStorage.setItem('ok', document.querySelectorAll('.upload-row.ok').length)); }""")
    clicked = time.monotonic()
    page.click("#upload-start")
    deadline = clicked + 2 * TIMEOUT + 60  # polled: a failed upload means no reload at all
    while len(finished) < len(files) or not [t for t in loads if t > clicked]:
        if any(s != 201 for s in statuses.values()) or time.monotonic() > deadline:
            raise BenchError(f"uploads answered {list(statuses.values())}, {len(finished)} done")
        page.wait_for_timeout(20)
        if len(finished) == len(files) and "upload" not in rep.marks:
            rep.mark("upload", max(at for at, _ in finished))
    for at, request in finished:  # responseEnd counts from the request's start; -1: unknown
        end = request.timing["responseEnd"]
        rep.client.append((at, end / 1000 if end >= 0 else at - clicked))
    page.wait_for_load_state("load")
    pairs = page.locator(".staff-pair")
    if page.evaluate("sessionStorage.getItem('ok')") != "4" or pairs.count() != 2:
        raise BenchError(f"not every upload row was ok, or {pairs.count()} pairs shown, not 2")
    page.locator(".compare-range").nth(1).wait_for(state="visible")  # compare.js unhides them
    loaded = "[...document.querySelectorAll('.compare-frame img')]"
    loaded += ".filter(i => i.complete && i.naturalWidth).length"
    if page.evaluate(loaded) != 4:
        raise BenchError("not all 4 staff previews loaded")
    rep.pair_warnings = page.locator(".staff-pair .warnings li").count()
    rep.mark("reload")

    with page.expect_navigation():  # POST, redirect, GET of the same URL
        page.click("text=Submit for review")
    if not page.get_by_text("Sent for review.").is_visible():
        raise BenchError(f"not submitted: {page.locator('.messages').all_inner_texts()}")
    rep.mark("submit")

    if page.locator("#override").count():  # the demo user reviews too
        page.fill("#override", "Same light and distance; checked by eye.")
    with page.expect_navigation():
        page.click("text=Approve and publish")
    if not page.get_by_text("Approved and published").is_visible():
        raise BenchError(f"not published: {page.locator('.messages').all_inner_texts()}")
    rep.mark("publish")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def breakdown(record: dict[str, Any]) -> dict[str, float]:
    """One upload request's time in the worker, split into the pipeline's steps."""
    steps = record["steps"]
    spent = {name: seconds for name, (seconds, _) in steps.items()}
    validate = spent.get("validate_photo", 0.0)
    add = spent.get("add_photo", 0.0)
    build = spent.get("build_renditions", 0.0)
    render = spent.get("render_crop", 0.0)
    sync = spent.get("sync_public_files", 0.0)
    total = record["t1"] - record["t0"]
    return {
        "validate": validate,
        "store": add - validate,
        "render": render,
        "files": build - render - sync,
        "sync": sync,
        "other": total - add - build,
        "total": total,
        "cpu": record["cpu"],
        "renders": steps.get("render_crop", (0, 0))[1],
    }


def report(reps: list[Rep], files: list[Path], access: list[float]) -> None:
    names = [f"rep {r.number}" for r in reps]
    print("\nPhotos (the same four files in every rep):")
    for path, (_, role, view, orientation, _) in zip(files, PHOTOS, strict=True):
        heic = path.suffix == ".HEIC"
        facts = f"{role}/{view}, EXIF Orientation {1 if heic else orientation}"
        mb = path.stat().st_size / 1e6
        print(f"  {path.name:<14} {'HEIC' if heic else 'JPEG'}  {mb:5.2f} MB  {facts}")
    print(f"  together {sum(p.stat().st_size for p in files) / 1e6:.2f} MB")

    print("\nTime to add a case with four photos (s, wall clock in the browser):")
    rows = []
    for key, label in PHASES.items():
        times = [r.marks[key][1] - r.marks[key][0] for r in reps]
        if key == "publish":
            totals = [r.total for r in reps]
            rows.append(
                ["TOTAL (the photographer)", *(f"{x:.2f}" for x in [median(totals), *totals])]
            )
        rows.append([label, *(f"{x:.2f}" for x in [median(times), *times])])
    app.print_table(rows, ["phase", "median", *names], "  ")

    print(
        "\nServer time per phase: s in the gunicorn workers, wall / CPU, summed over its requests"
    )
    rows = []
    for key, label in PHASES.items():
        walls = [sum(x["t1"] - x["t0"] for x in r.in_phase(key)) for r in reps]
        cpus = [sum(x["cpu"] for x in r.in_phase(key)) for r in reps]
        counts = "/".join(str(len(r.in_phase(key))) for r in reps)
        cells = [f"{w:.2f} / {c:.2f}" for w, c in zip(walls, cpus, strict=True)]
        rows.append([label, counts, f"{median(walls):.2f} / {median(cpus):.2f}", *cells])
    app.print_table(rows, ["phase", "requests", "median", *names], "  ")

    print("\nUpload requests (s); the steps: wall clock; (n): render_crop calls:")
    sums = []  # per rep: each step summed over its upload requests
    for rep in reps:
        rows = []
        uploads = [r for r in rep.in_phase("upload") if UPLOAD_PATH.search(r["path"])]
        for record in sorted(uploads, key=lambda r: r["t0"]):
            b = breakdown(record)
            who = record["upload"]
            start = record["t0"] - rep.marks["upload"][0]
            steps = [f"{b[k]:.2f}" for k in STEPS]
            steps[list(STEPS).index("render")] += f" ({b['renders']})"
            rows.append([who["name"], f"{who['role']}/{who['view']}", record["status"]])
            rows[-1] += [f"+{start:.2f}", f"{b['total']:.2f}", f"{b['cpu']:.2f}", *steps]
        keys = [*STEPS, "total", "cpu", "renders"]
        sums.append({k: sum(breakdown(r)[k] for r in uploads) for k in keys})
        print(f"  rep {rep.number}, case {rep.case_id}, patient {rep.patient}:")
        app.print_table(rows, ["file", "role/view", "HTTP", "start", "server", "cpu", *STEPS], " ")
        client = ", ".join(f"{s:.2f}" for _, s in sorted(rep.client))
        print(f"    as Chromium saw them (request start to response end): {client}")
        if rep.pair_warnings:
            print(f"    the reloaded page shows {rep.pair_warnings} comparability warning(s)")

    def part(key: str) -> float:
        return median([s[key] for s in sums])

    print("\nUpload phase, summed over its four requests (median of the reps):")
    for key, label in STEPS.items():
        print(f"  {label:<36} {part(key):6.2f} s  {part(key) / part('total'):4.0%}")
    print(f"  {'request time in the workers':<36} {part('total'):6.2f} s")
    print(f"  {'CPU of the workers for them':<36} {part('cpu'):6.2f} s")
    print(f"  render_crop calls for 4 photos: {part('renders'):.0f}")
    published = [[breakdown(r) for r in rep.in_phase("publish")] for rep in reps]
    publish = {k: median([sum(b[k] for b in p) for p in published]) for k in ("render", "renders")}
    calls = f"{publish['renders']:.0f} calls"
    print(f"  then the publish: render_crop {publish['render']:.2f} s ({calls})")
    hooks = f"{sum(len(r.in_phase('upload')) for r in reps)}, {sum(s['total'] for s in sums):.2f} s"
    print(f"  cross-check, access log: {len(access)}, {sum(access):.2f} s (the hooks: {hooks})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="cases to add (1-30)")
    parser.add_argument("--no-heic", action="store_true", help="four JPEGs, no HEIC")
    args = parser.parse_args(argv)
    if not 1 <= args.reps <= 30:
        parser.error("need 1 <= --reps <= 30 (one demo patient each)")
    app.on_sigterm()
    with tempfile.TemporaryDirectory(prefix="bench-add-case-") as tmp:
        return run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> int:
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    env = app.environment(tmp, BENCH_PROBE_LOG=str(tmp / "probe.jsonl"))  # django-axes on
    print(f"Work dir {tmp}; {os.cpu_count()} CPUs; load average {app.loadavg()}\nSetup:")
    app.setup(env)
    # seed_demo's patients, each with an active consent: a new case for each.
    refs = [f"DEMO-{n:03d}" for n in range(1, args.reps + 1)]
    t0 = time.monotonic()
    (tmp / "photos").mkdir()
    files = make_photos(tmp / "photos", heic=not args.no_heic)
    print(f"  four 12 MP photos generated: {time.monotonic() - t0:.1f} s", flush=True)
    (tmp / "probe.py").write_text(PROBE)
    reps = []
    error = ""
    options = ("--config", str(tmp / "probe.py"), "--timeout", str(TIMEOUT))
    with app.gunicorn(env, tmp, *options, workers=WORKERS) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=app.CHROMIUM, args=app.CHROMIUM_ARGS)
        print(f"gunicorn on {server.base}, {WORKERS} workers; Chromium {browser.version}, tablet")
        for n, ref in enumerate(refs, 1):
            context = browser.new_context(viewport={"width": 820, "height": 1180}, has_touch=True)
            context.set_default_timeout(60_000)
            rep = Rep(n, ref)
            try:
                flow(context.new_page(), server.base, rep, files)
            except Exception as exc:  # report what was measured, then stop
                error = f"rep {n} failed: {type(exc).__name__}: {exc}"
                break
            finally:
                context.close()
            reps.append(rep)
            print(f"  rep {n}: case {rep.case_id} in {rep.total:.1f} s ({app.loadavg()})")
        browser.close()
    # gunicorn stopped gracefully: every request's probe line is written.
    records = [json.loads(line) for line in (tmp / "probe.jsonl").read_text().splitlines()]
    for rep in reps:
        start, end = rep.marks["login"][0], rep.marks["publish"][1]
        rep.server = [r for r in records if start <= r["t0"] < end]
    access = []
    for line in (tmp / "access.log").read_text().splitlines():  # %(D)s: microseconds
        if '"POST ' in line and UPLOAD_PATH.search(line.split()[2]):
            access.append(int(line.rsplit(" ", 1)[1].removesuffix("us")) / 1e6)
    if reps:
        report(reps, files, access)
    if error:
        print(f"\n{error}\n{app.tail(tmp / 'gunicorn.log')}")
        return 1
    print(f"\nBenchmark run: {time.monotonic() - started:.0f} s; load average {app.loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
