#!/usr/bin/env python
"""Time a photographer adding a case with four 12 MP photos in Chromium; see bench/README.md."""

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
from playwright.sync_api import sync_playwright

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
# The upload form's rows: name, role, view, EXIF Orientation (6: stored landscape, as phones
# do), DateTimeOriginal. The close-up after is a HEIC (pixels upright) unless --no-heic.
PHOTOS = [
    ("IMG_0001.JPG", "before", "front", 1, "2025:10:06 10:02:11"),
    ("IMG_0002.JPG", "after", "front", 1, "2026:01:12 10:31:40"),
    ("IMG_0003.JPG", "before", "close_up", 6, "2025:10:06 10:04:55"),
    ("IMG_0004.JPG", "after", "close_up", 6, "2026:01:12 10:33:02"),
]
STEPS = {
    "validate": "validate_photo",
    "store": "store original + row",
    "render": "render_crop",
    "files": "write rendition files, switch rows",
    "sync": "sync_public_files",
    "other": "body, parsing, auth, JSON",
}

# A gunicorn config file: times every request in the worker and the pipeline's steps inside it
# (module attributes the view looks up at call time), on one clock for every process.
PROBE = """import json, os, time

current = None  # the request this sync worker is handling

def timed(step, fn):
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
    staff.add_photo = timed("add_photo", staff.add_photo)
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
        out.write(json.dumps(record) + "\\n")
"""


def make_photos(folder: Path, heic: bool) -> list[Path]:
    """Four 12 MP phone photos with camera EXIF; the last one a HEIC unless ``heic`` is off."""
    sys.path.insert(0, str(app.ROOT))
    import pillow_heif
    from PIL import Image

    paths = []
    for n, (name, role, view, orientation, taken) in enumerate(PHOTOS):
        is_heic = heic and n == 3
        size, seed = ((4000, 3000), 11) if view == "front" else ((3000, 4000), 12)
        # A phone's HEVC encoder sees denoised pixels, and noise costs HEVC far more bytes.
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
    pair_warnings: int = 0
    started: float = 0.0

    def mark(self, phase: str, end: float | None = None) -> None:
        """Contiguous phases: each starts where the previous one ended."""
        start = self.marks[list(self.marks)[-1]][1] if self.marks else self.started
        self.marks[phase] = (start, time.monotonic() if end is None else end)

    @property
    def total(self) -> float:
        return self.marks["submit"][1] - self.marks["login"][0]  # the photographer's part


def flow(page: Any, base: str, rep: Rep, files: list[Path]) -> None:
    """One photographer's case, phase by phase; raises BenchError when a step goes wrong."""
    statuses: dict[Any, int] = {}
    finished: list[float] = []
    loads: list[float] = []

    def is_upload(request: Any) -> bool:
        return request.method == "POST" and bool(UPLOAD_PATH.search(request.url))

    def on_response(response: Any) -> None:
        if is_upload(response.request):
            statuses[response.request] = response.status

    def on_finished(request: Any) -> None:
        if is_upload(request):
            finished.append(time.monotonic())

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
    # Two sessions, added with the page's own buttons: the before photos' day, 4 weeks later.
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
    page.select_option("#id_location", index=1)  # seed_demo's first location, a doctor there
    doctor = "Dr. Amara Okafor, Consultant dermatologist (Demo Skin Clinic)"
    page.select_option("#id_practitioner", label=doctor)
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
            rep.mark("upload", max(finished))
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


def breakdown(record: dict[str, Any]) -> dict[str, float]:
    """One request's time in the worker, split into the pipeline's steps."""
    spent = {name: seconds for name, (seconds, _) in record["steps"].items()}
    names = ("validate_photo", "add_photo", "build_renditions", "render_crop", "sync_public_files")
    validate, add, build, render, sync = (spent.get(name, 0.0) for name in names)
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
        "renders": record["steps"].get("render_crop", (0, 0))[1],
    }


def report(reps: list[Rep], files: list[Path], records: list[dict[str, Any]]) -> None:
    print("\nPhotos (the same four files in every rep):")
    for path, (_, role, view, orientation, _) in zip(files, PHOTOS, strict=True):
        heic = path.suffix == ".HEIC"
        facts = f"{role}/{view}, EXIF Orientation {1 if heic else orientation}"
        mb = path.stat().st_size / 1e6
        print(f"  {path.name:<14} {'HEIC' if heic else 'JPEG'}  {mb:5.2f} MB  {facts}")
    print(f"  together {sum(p.stat().st_size for p in files) / 1e6:.2f} MB")

    print("\nTime to add a case with four photos (s, wall clock in the browser):")
    rows = [(label, [r.marks[k][1] - r.marks[k][0] for r in reps]) for k, label in PHASES.items()]
    rows.insert(-1, ("TOTAL (the photographer)", [r.total for r in reps]))  # before the publish
    table = [[label, *(f"{x:.2f}" for x in [statistics.median(t), *t])] for label, t in rows]
    app.print_table(table, ["phase", "median", *(f"rep {r.number}" for r in reps)], "  ")

    def summed(phase: str, requests: list[dict[str, Any]]) -> dict[str, float]:
        """Each figure of breakdown() summed over the phase's requests, median of the reps."""
        per_rep = []
        for rep in reps:  # the requests that started in the worker during the phase
            start, end = rep.marks[phase]
            per_rep.append([breakdown(r) for r in requests if start <= r["t0"] < end])
        keys = [*STEPS, "total", "cpu", "renders"]
        return {k: statistics.median(sum(b[k] for b in bs) for bs in per_rep) for k in keys}

    upload = summed("upload", [r for r in records if UPLOAD_PATH.search(r["path"])])
    print("\nUpload phase, summed over its four requests (median of the reps):")
    for key, label in STEPS.items():
        print(f"  {label:<36} {upload[key]:6.2f} s  {upload[key] / upload['total']:4.0%}")
    print(f"  {'request time in the workers':<36} {upload['total']:6.2f} s")
    print(f"  {'CPU of the workers for them':<36} {upload['cpu']:6.2f} s")
    print(f"  render_crop calls for 4 photos: {upload['renders']:.0f}")
    review = summed("publish", records)
    calls = f"{review['renders']:.0f} calls"
    print(f"  then the publish: render_crop {review['render']:.2f} s ({calls})")


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
    started = time.monotonic()
    env = app.environment(tmp, BENCH_PROBE_LOG=str(tmp / "probe.jsonl"))  # django-axes on
    print(f"Work dir {tmp}; {os.cpu_count()} CPUs; load average {app.loadavg()}\nSetup:")
    app.setup(env)
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
        for n in range(1, args.reps + 1):
            context = browser.new_context(viewport={"width": 820, "height": 1180}, has_touch=True)
            context.set_default_timeout(60_000)
            rep = Rep(n, f"DEMO-{n:03d}")  # seed_demo's patients, each with an active consent
            try:
                flow(context.new_page(), server.base, rep, files)
            except Exception as exc:  # report what was measured, then stop
                error = f"rep {n} failed: {type(exc).__name__}: {exc}"
                break
            finally:
                context.close()
            reps.append(rep)
            print(f"  rep {n}: case {rep.case_id} in {rep.total:.1f} s ({app.loadavg()})")
            if rep.pair_warnings:
                print(f"    the reloaded page shows {rep.pair_warnings} comparability warning(s)")
        browser.close()
    # gunicorn stopped gracefully: every request's probe line is written.
    records = [json.loads(line) for line in (tmp / "probe.jsonl").read_text().splitlines()]
    if reps:
        report(reps, files, records)
    if error:
        print(f"\n{error}\n{app.tail(tmp / 'gunicorn.log')}")
        return 1
    print(f"\nBenchmark run: {time.monotonic() - started:.0f} s; load average {app.loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
