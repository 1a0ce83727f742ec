#!/usr/bin/env python
"""The gallery's rendition pipeline against pyvips in one process. See bench/README.md.

Every measurement runs in a fresh process, and the parent imports neither Pillow nor pyvips:
Linux charges a child's pre-exec memory (the parent's) to the child's ru_maxrss.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
TARGET_FULL_SET = 1.0  # project / pyvips, full 9-file set
TARGET_SINGLE_JPEG = 1.2  # project / pyvips, one JPEG rendition
TARGET_BYTES = 1.0  # project / pyvips bytes at the project's SSIMULACRA2 score
TARGET_PEAK_MB = 100.0  # project child's peak RSS on the 48 MP JPEG (imports included)
MEMORY_INPUT = "48mp-jpeg"
QUALITY_INPUT = "12mp-jpeg"
Size = tuple[int, int]

# ---------------------------------------------------------------------------------------
# Child side: everything that imports Pillow, pyvips or the project runs here.


def vm_kb(name: str) -> int:
    """A field of /proc/self/status in KB (VmRSS = now, VmHWM = this process's peak)."""
    with open("/proc/self/status") as fh:
        return next(int(x.split()[1]) for x in fh if x.startswith(name + ":"))


def import_project() -> Any:
    """gallery.images as a worker imports it (it needs Pillow only, not Django)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")
    from gallery import images

    images.register_heif()
    return images


def vips_decode(pyvips: Any, path: str, size: Size) -> Any:
    """One decode: shrink-on-load, EXIF rotation, sRGB, at the largest output size. The
    wheel's libheif has no HEVC decoder: a HEIC is decoded by pillow-heif, as a peer would."""
    if path.endswith(".heic"):
        import pillow_heif

        im = pillow_heif.open_heif(path).to_pillow().convert("RGB")
        raw = pyvips.Image.new_from_memory(im.tobytes(), im.width, im.height, 3, "uchar")
        big = raw.thumbnail_image(size[0], height=size[1], size="force")
    else:
        big = pyvips.Image.thumbnail(path, size[0], height=size[1], size="force")
    return big.copy_memory()


def vips_encode(big: Any, size: Size, fmt: str, opts: dict[str, Any], q: int) -> bytes:
    """One output as the project's ENCODE_OPTIONS[fmt] would make it, at vips' ``Q``."""
    frame = big
    if size != (big.width, big.height):
        frame = big.resize(size[0] / big.width, vscale=size[1] / big.height, kernel="lanczos3")
    if fmt == "jpeg":  # mozjpeg in pyvips-binary, but vips' defaults leave trellis etc. off
        return frame.jpegsave_buffer(Q=q, interlace=opts["progressive"], keep="none")
    if fmt == "webp":  # Pillow's method and vips' effort are both libwebp's method
        return frame.webpsave_buffer(Q=q, effort=opts["method"], keep="none")
    # Pillow's speed and vips' 9 - effort both reach libaom as cpu-used; 8-bit AV1.
    effort = max(0, min(9, 9 - opts["speed"]))
    return frame.heifsave_buffer(Q=q, effort=effort, bitdepth=8, compression="av1", keep="none")


def child_render(side: str, path: str, w: int, h: int, sizes: list[Size], spec: dict) -> None:
    """Render the full frame as the project or pyvips builds a photo's set; one JSON line."""
    formats, qs = spec["formats"], spec["vips_q"]
    t0 = time.perf_counter()
    if side == "project":
        images = import_project()
    else:
        import pyvips
    import_s, import_kb = time.perf_counter() - t0, vm_kb("VmRSS")
    if side == "project":
        crop = images.centred_crop(w, h, w / h)
        with open(path, "rb") as fp:
            t0 = time.perf_counter()
            out = [o[3] for o in images.render_crop(fp, crop, sizes, formats=tuple(formats))]
    else:
        t0 = time.perf_counter()
        big = vips_decode(pyvips, path, max(sizes))
        out = [vips_encode(big, s, f, spec["options"][f], qs[f]) for s in sizes for f in formats]
    result = {"import_s": import_s, "render_s": time.perf_counter() - t0, "import_kb": import_kb}
    print(json.dumps(result | {"hwm_kb": vm_kb("VmHWM"), "bytes": sum(map(len, out))}))


def child_profile(path: str, w: int, h: int, sizes: list[Size], spec: dict) -> None:
    import cProfile
    import pstats

    images = import_project()
    crop = images.centred_crop(w, h, w / h)
    with open(path, "rb") as fp, cProfile.Profile() as profiler:
        images.render_crop(fp, crop, sizes, formats=tuple(spec["formats"]))
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(14)


def child_quality(path: str, w: int, h: int, sizes: list[Size], spec: dict) -> None:
    """SSIMULACRA2 and bytes of each output, the project's at its qualities and pyvips' at
    the Qs of a bisection to the same score, against the source fully decoded and
    downscaled by Lanczos 3."""
    import io

    import pyvips
    from PIL import Image, ImageOps
    from ssimulacra2 import compute_ssimulacra2

    images = import_project()
    with Image.open(path) as im:
        full = ImageOps.exif_transpose(im).convert("RGB")
    refs = {}
    for size in sizes:
        buf = io.BytesIO()
        full.resize(size, Image.Resampling.LANCZOS).save(buf, format="PNG", compress_level=1)
        refs[size] = buf.getvalue()
    del full

    def score(size: Size, data: bytes) -> float:
        return compute_ssimulacra2(io.BytesIO(refs[size]), io.BytesIO(data))

    def bisect(size: Size, fmt: str, target: float) -> None:
        """pyvips' Q around the project's score: the two integer Qs that bracket it."""
        lo, hi = 1, 100
        while hi - lo > 1:
            mid = (lo + hi) // 2
            data = vips_encode(big, size, fmt, spec["options"][fmt], mid)
            rows.append(["vips", fmt, size[0], mid, len(data), score(size, data)])
            lo, hi = (mid, hi) if rows[-1][5] < target else (lo, mid)

    rows = []
    crop = images.centred_crop(w, h, w / h)
    big = vips_decode(pyvips, path, max(sizes))
    for fmt in spec["formats"]:
        with open(path, "rb") as fp:
            for _, ow, oh, data in images.render_crop(fp, crop, sizes, formats=(fmt,)):
                q = images.ENCODE_OPTIONS[fmt]["quality"]
                rows.append(["project", fmt, ow, q, len(data), score((ow, oh), data)])
                bisect((ow, oh), fmt, rows[-1][5])
    print(json.dumps(rows))


def child_inputs(outdir: str, quick: bool) -> None:
    """Write the test photos (with camera EXIF) and print their facts and the encoders'."""
    images = import_project()
    import app

    specs = [("12mp-jpeg", (4000, 3000), "JPEG")]
    if not quick:
        specs.append(("48mp-jpeg", (8000, 6000), "JPEG"))
        specs.append(("12mp-heic", (4000, 3000), "HEIF"))
    facts = []
    for seed, (name, (w, h), fmt) in enumerate(specs, start=1):
        t0 = time.perf_counter()
        path = Path(outdir) / f"{name}.{'jpg' if fmt == 'JPEG' else 'heic'}"
        photo = app.camera_photo((w, h), seed)
        photo.save(path, format=fmt, quality=90, exif=app.camera_exif())
        sizes = images.pair_output_sizes([(w, h)], w / h)
        fact = {"name": name, "path": str(path), "width": w, "height": h, "sizes": sizes}
        facts.append(fact | {"bytes": path.stat().st_size, "seconds": time.perf_counter() - t0})
    formats = {"formats": list(images.RENDITION_FORMATS)}
    print(json.dumps({"inputs": facts, "options": images.ENCODE_OPTIONS} | formats))


def child_main(argv: list[str]) -> int:
    """A positional protocol rather than argparse, which would add ~1.6 MB to every child."""
    if argv[0] == "inputs":
        child_inputs(argv[1], quick=argv[2:] == ["quick"])
        return 0
    path, upright, sizes, spec = argv[1:]
    w, h = (int(v) for v in upright.split("x"))
    pairs = [(int(a), int(b)) for a, b in (s.split("x") for s in sizes.split(","))]
    child = {"profile": child_profile, "quality": child_quality}.get(argv[0])
    (child or partial(child_render, argv[0]))(path, w, h, pairs, json.loads(spec))
    return 0


# ---------------------------------------------------------------------------------------
# Parent side: spawn, time and compare. Standard library only.


@dataclass
class Run:
    wall_s: float  # the whole child process, spawn to reap
    maxrss_kb: int  # ru_maxrss of exactly this child (os.wait4)
    stdout: str


def run_child(cmd: list[str]) -> Run:
    import subprocess
    import tempfile

    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        stdout = proc.stdout.read().decode()  # type: ignore[union-attr]
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.stdout.close()  # type: ignore[union-attr]
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed:\n{err.read().decode()[-3000:]}")
    return Run(wall, usage.ru_maxrss, stdout)


@dataclass
class Side:
    """One side's measurements of one task across reps."""

    render_s: list[float] = field(default_factory=list)  # the rendering only
    proc_s: list[float] = field(default_factory=list)  # the whole child process
    import_s: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    import_kb: list[int] = field(default_factory=list)
    hwm_kb: list[int] = field(default_factory=list)
    bytes: int = 0


def child_cmd(kind: str, inp: dict, sizes: list[Size], spec: dict) -> list[str]:
    size_text = ",".join(f"{w}x{h}" for w, h in sizes)
    upright = f"{inp['width']}x{inp['height']}"
    args = [kind, inp["path"], upright, size_text, json.dumps(spec)]
    return [sys.executable, str(SCRIPT), "--child", *args]


def measure(sides: dict[str, Side], inp: dict, sizes: list[Size], spec: dict, rep: int) -> None:
    # Alternate which side goes first, so neither always gets the cooler CPU and caches.
    for kind in ("project", "vips") if rep % 2 == 0 else ("vips", "project"):
        run = run_child(child_cmd(kind, inp, sizes, spec))
        data, side = json.loads(run.stdout) | {"proc_s": run.wall_s}, sides[kind]
        for key in ("render_s", "proc_s", "import_s", "import_kb", "hwm_kb"):
            getattr(side, key).append(data[key])
        side.rss_kb.append(run.maxrss_kb)
        side.bytes = data["bytes"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:  # before any parent-only import
        return child_main(argv[1:])
    import argparse
    import shutil
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions (5)")
    parser.add_argument("--quick", action="store_true", help="1 rep, 12 MP JPEG only")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    parser.add_argument("--profile", action="store_true", help="also cProfile the largest JPEG")
    parser.add_argument("--no-quality", action="store_true", help="skip the SSIMULACRA2 part")
    args = parser.parse_args(argv)
    args.reps = 1 if args.quick else args.reps
    if args.reps < 1:
        parser.error("need --reps >= 1")
    workdir = Path(tempfile.mkdtemp(prefix="bench-images-"))  # never in the repository
    try:
        return bench(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def bench(args: Any, workdir: Path) -> int:
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, reps={args.reps}")
    print("Generating inputs ...", flush=True)
    gen = [sys.executable, str(SCRIPT), "--child", "inputs", str(workdir), *["quick"][: args.quick]]
    setup = json.loads(run_child(gen).stdout)
    inputs, formats, options = setup["inputs"], setup["formats"], setup["options"]
    for inp in inputs:
        print(
            f"  {inp['name']}: {inp['width']}x{inp['height']}, {inp['bytes'] / 1e6:.1f} MB, "
            f"made in {inp['seconds']:.1f} s"
        )
    print("project options: " + "; ".join(f"{k}={v}" for k, v in options.items()))
    spec = {"formats": formats, "options": options}
    failed: list[str] = []
    sys.path.insert(0, str(SCRIPT.parent))
    from app import print_table  # stdlib only: a few MB on the parent's RSS, reported

    # pyvips is timed at the Q that gives the project's SSIMULACRA2 score at the largest
    # width (the same quality), or at the project's quality number when not measured.
    spec["vips_q"] = {f: o["quality"] for f, o in options.items()}
    if not args.no_quality:
        inp = next(i for i in inputs if i["name"] == QUALITY_INPUT)
        sizes = [tuple(s) for s in inp["sizes"]]
        print(f"SSIMULACRA2 on {inp['name']}, bisecting pyvips' Q ...", flush=True)
        quality = json.loads(run_child(child_cmd("quality", inp, sizes, spec)).stdout)
        matched = quality_report(quality, formats, [s[0] for s in sizes], failed, print_table)
        spec["vips_q"] |= {f: round(matched[f]) for f in formats if matched.get(f)}
    print("pyvips Q for the timing: " + ", ".join(f"{k}={v}" for k, v in spec["vips_q"].items()))
    tasks = []  # (input, what, sizes, spec, sides): the full set, then each single JPEG
    for inp in inputs:
        sizes = [tuple(s) for s in inp["sizes"]]
        tasks.append((inp, f"full set ({len(sizes) * len(formats)})", sizes, spec))
        tasks += [(inp, f"jpeg {s[0]}", [s], spec | {"formats": ["jpeg"]}) for s in sizes]
    tasks = [(*t, {"project": Side(), "vips": Side()}) for t in tasks]
    print("Warm-up ...", flush=True)  # page cache, shared libraries
    for inp, what, sizes, sp, _ in tasks:
        if what.startswith("full"):
            measure({"project": Side(), "vips": Side()}, inp, sizes, sp, 0)
    for rep in range(args.reps):
        t0 = time.perf_counter()
        for inp, _, sizes, sp, sides in tasks:
            measure(sides, inp, sizes, sp, rep)
        print(f"rep {rep + 1}/{args.reps} done in {time.perf_counter() - t0:.1f} s", flush=True)
    failed += report(tasks, args.reps, print_table)
    if args.profile:
        full_jpegs = [t for t in tasks if "jpeg" in t[0]["name"] and t[1].startswith("full")]
        inp, _, sizes, sp, _ = max(full_jpegs, key=lambda t: t[0]["width"])
        print(f"\ncProfile of render_crop, full set, {inp['name']} (sorted by own time):")
        print(run_child(child_cmd("profile", inp, sizes, sp)).stdout)
    if failed:
        print(f"\n{len(failed)} target(s) missed: {', '.join(failed)}")
    return 1 if failed and args.strict else 0


def at_score(curve: list[list], score: float, col: int) -> float | None:
    """Column ``col`` (bytes: log-interpolated, or Q) of pyvips' curve at ``score``."""
    points = sorted((r[5], r[col]) for r in curve)
    for (s0, v0), (s1, v1) in zip(points, points[1:], strict=False):
        if s0 <= score <= s1:
            t = (score - s0) / (s1 - s0) if s1 > s0 else 0.0
            if col == 4:
                return math.exp(math.log(v0) + t * (math.log(v1) - math.log(v0)))
            return v0 + t * (v1 - v0)
    return None  # outside the swept range: no honest figure


def quality_report(rows: list, formats: list, widths: list, failed: list, table: Any) -> dict:
    """Per format and width: the project's bytes over pyvips' bytes at the same score."""
    out, matched = [], {}
    for fmt in formats:
        ours_total = vips_total = 0.0
        for width in widths:
            [ours] = [r for r in rows if r[:3] == ["project", fmt, width]]
            curve = [r for r in rows if r[:3] == ["vips", fmt, width]]
            vbytes, vq = at_score(curve, ours[5], 4), at_score(curve, ours[5], 3)
            if width == max(widths):
                matched[fmt] = vq
            ratio = ours[4] / vbytes if vbytes else float("inf")
            ours_total += ours[4]
            vips_total += vbytes or 0.0
            verdict = "PASS" if ratio <= TARGET_BYTES else "FAIL"
            if ratio > TARGET_BYTES:
                failed.append(f"{fmt} {width} bytes at equal score")
            vtext = f"{vbytes / 1024:.1f}" if vbytes else "out of range"
            qtext = f"{vq:.0f}" if vq else "-"
            out.append([fmt, width, ours[3], f"{ours[5]:.1f}", f"{ours[4] / 1024:.1f}"])
            out[-1] += [qtext, vtext, f"{ratio:.2f}x", f"<={TARGET_BYTES:.1f}x", verdict]
        whole = ours_total / vips_total if vips_total else float("inf")
        out.append([fmt, "all", "", "", f"{ours_total / 1024:.1f}", "", f"{vips_total / 1024:.1f}"])
        out[-1] += [f"{whole:.2f}x", "", ""]
    print("\nBytes at equal SSIMULACRA2 (vs the source downscaled by Lanczos 3): pyvips' KB and")
    print("Q interpolated between the two Qs that bracket the project's score (log bytes):")
    head = ["format", "width", "our q", "score", "our KB", "vips Q", "vips KB", "ratio"]
    table(out, [*head, "target", "result"])
    return matched


def report(tasks: list, reps: int, table: Any) -> list[str]:
    import resource
    from statistics import median

    parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    failed, rows, memory, overheads = [], [], [], []
    for inp, what, _, _, sides in tasks:
        ours, vips = sides["project"], sides["vips"]
        name, full = inp["name"], what.startswith("full")
        target = TARGET_FULL_SET if full else TARGET_SINGLE_JPEG
        ratios = [p / max(1e-6, v) for p, v in zip(ours.render_s, vips.render_s, strict=True)]
        procs = [p / max(1e-6, v) for p, v in zip(ours.proc_s, vips.proc_s, strict=True)]
        ratio = median(ratios)
        if ratio > target:
            failed.append(f"{name} {what}")
        rows.append([name, what, f"{median(ours.render_s):.3f}", f"{median(vips.render_s):.3f}"])
        rows[-1] += [f"{ratio:.2f}x", f"<={target:.1f}x", "PASS" if ratio <= target else "FAIL"]
        rows[-1] += [f"{median(procs):.2f}x", f"{ours.bytes / 1024:.0f}/{vips.bytes / 1024:.0f}"]
        rest = [
            median(a - b - c for a, b, c in zip(s.proc_s, s.render_s, s.import_s, strict=True))
            for s in (ours, vips)
        ]
        imports = [f"{median(s.import_s):.3f}" for s in (ours, vips)]
        overheads.append([name, what, *imports, *(f"{r:.3f}" for r in rest)])
        if full:
            peak = max(ours.rss_kb) / 1024
            verdict = ["-", "-"]
            if name == MEMORY_INPUT:
                verdict = [f"<={TARGET_PEAK_MB:.0f}", "PASS" if peak <= TARGET_PEAK_MB else "FAIL"]
                if peak > TARGET_PEAK_MB:
                    failed.append(f"{name} peak memory")
            mb = [max(x) / 1024 for x in (ours.import_kb, ours.hwm_kb, vips.rss_kb)]
            memory.append([name, f"{peak:.1f}", *(f"{x:.1f}" for x in mb), *verdict])
    print(
        "\nTimes: medians over reps of the rendering alone (decode to encoded bytes), each side"
        "\nin a fresh process. ratio = median of the per-rep project/pyvips ratios (the verdict);"
        "\nproc ratio: the whole child processes instead; out KB: encoded bytes of one run."
    )
    head = ["input", "what", "project s", "pyvips s", "ratio", "target", "result", "proc ratio"]
    table(rows, [*head, "out KB proj/vips"])
    print("\nPeak memory of the full-set child (max over reps, MB), 'after imports' included:")
    head = ["input", "project peak", "after imports", "own VmHWM", "pyvips peak", "target"]
    table(memory, [*head, "result"])
    print("\nOverheads (medians, s): imports and Python start+exit, outside the times above.")
    head = ["input", "what", "imports proj", "imports vips", "start+exit proj", "start+exit vips"]
    table(overheads, head)
    print(f"\nParent RSS {parent_mb:.1f} MB (a floor on every child's ru_maxrss).")
    if reps < 5:
        print(f"Only {reps} rep(s): medians are indicative, use --reps 5 or more.")
    return failed


if __name__ == "__main__":
    sys.exit(main())
