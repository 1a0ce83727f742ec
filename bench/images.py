#!/usr/bin/env python
"""The gallery's rendition pipeline against pyvips in one process. See bench/README.md."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import defaultdict
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


def child_render(
    side: str, path: str, width: int, height: int, sizes: list[Size], spec: dict
) -> None:
    """Render the full frame as the project or pyvips builds a photo's set; one JSON line."""
    formats, qs = spec["formats"], spec["vips_q"]
    t0 = time.perf_counter()
    if side == "project":
        images = import_project()
    else:
        import pyvips
    import_s, import_kb = time.perf_counter() - t0, vm_kb("VmRSS")
    if side == "project":
        crop = images.centred_crop(width, height, width / height)
        with open(path, "rb") as fp:
            t0 = time.perf_counter()
            out = [o[3] for o in images.render_crop(fp, crop, sizes, formats=tuple(formats))]
    else:
        t0 = time.perf_counter()
        big = vips_decode(pyvips, path, max(sizes))
        out = [vips_encode(big, s, f, spec["options"][f], qs[f]) for s in sizes for f in formats]
    result = {"import_s": import_s, "render_s": time.perf_counter() - t0, "import_kb": import_kb}
    print(json.dumps(result | {"hwm_kb": vm_kb("VmHWM"), "bytes": sum(map(len, out))}))


def child_quality(path: str, width: int, height: int, sizes: list[Size], spec: dict) -> None:
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
    crop = images.centred_crop(width, height, width / height)
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


def child_main(kind: str, job: str) -> int:
    """A JSON argument rather than argparse, which would add ~1.6 MB to every child."""
    args = json.loads(job)
    if kind == "inputs":
        child_inputs(**args)
        return 0
    args["sizes"] = [tuple(size) for size in args["sizes"]]
    child = child_quality if kind == "quality" else partial(child_render, kind)
    child(**args)
    return 0


# ---------------------------------------------------------------------------------------
# Parent side: spawn, time and compare. Standard library only (app.py too).


def run_child(kind: str, job: dict) -> tuple[Any, float, int]:
    """One child: its JSON output, its wall time (spawn to reap), its own ru_maxrss (KB)."""
    import subprocess
    import tempfile

    import app

    cmd = [sys.executable, str(SCRIPT), "--child", kind, json.dumps(job)]
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        out, usage = app.reap(proc)
        wall = time.perf_counter() - t0
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed:\n{err.read().decode()[-3000:]}")
    return json.loads(out), wall, usage.ru_maxrss


def job(inp: dict, sizes: list[Size], spec: dict) -> dict:
    return {key: inp[key] for key in ("path", "width", "height")} | {"sizes": sizes, "spec": spec}


def measure(sides: dict[str, dict], inp: dict, sizes: list[Size], spec: dict, rep: int) -> None:
    """Each side once, its figures appended to its lists; the order swaps every rep, so
    neither always gets the cooler CPU and caches."""
    for kind in ("project", "vips") if rep % 2 == 0 else ("vips", "project"):
        data, wall, maxrss = run_child(kind, job(inp, sizes, spec))
        for key, value in (data | {"proc_s": wall, "rss_kb": maxrss}).items():
            sides[kind][key].append(value)


def new_sides() -> dict[str, dict]:
    return {"project": defaultdict(list), "vips": defaultdict(list)}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:  # before any parent-only import
        return child_main(*argv[1:])
    import argparse
    import shutil
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions (5)")
    parser.add_argument("--quick", action="store_true", help="1 rep, 12 MP JPEG only")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
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
    setup, _, _ = run_child("inputs", {"outdir": str(workdir), "quick": args.quick})
    inputs, formats, options = setup["inputs"], setup["formats"], setup["options"]
    for inp in inputs:
        print(
            f"  {inp['name']}: {inp['width']}x{inp['height']}, {inp['bytes'] / 1e6:.1f} MB, "
            f"made in {inp['seconds']:.1f} s"
        )
    print("project options: " + "; ".join(f"{k}={v}" for k, v in options.items()))
    spec = {"formats": formats, "options": options}
    failed: list[str] = []
    # pyvips is timed at the Q that gives the project's SSIMULACRA2 score at the largest
    # width (the same quality), or at the project's quality number when not measured.
    spec["vips_q"] = {f: o["quality"] for f, o in options.items()}
    if not args.no_quality:
        inp = next(i for i in inputs if i["name"] == QUALITY_INPUT)
        print(f"SSIMULACRA2 on {inp['name']}, bisecting pyvips' Q ...", flush=True)
        quality, _, _ = run_child("quality", job(inp, inp["sizes"], spec))
        matched = quality_report(quality, formats, [s[0] for s in inp["sizes"]], failed)
        spec["vips_q"] |= {f: round(matched[f]) for f in formats if matched.get(f)}
    print("pyvips Q for the timing: " + ", ".join(f"{k}={v}" for k, v in spec["vips_q"].items()))
    tasks = []  # (input, what, sizes, spec, sides): the full set, then each single JPEG
    for inp in inputs:
        sizes = inp["sizes"]
        tasks.append((inp, f"full set ({len(sizes) * len(formats)})", sizes, spec, new_sides()))
        jpeg = spec | {"formats": ["jpeg"]}
        tasks += [(inp, f"jpeg {s[0]}", [s], jpeg, new_sides()) for s in sizes]
    print("Warm-up ...", flush=True)  # page cache, shared libraries
    for inp, what, sizes, sp, _ in tasks:
        if what.startswith("full"):
            measure(new_sides(), inp, sizes, sp, 0)
    for rep in range(args.reps):
        t0 = time.perf_counter()
        for inp, _, sizes, sp, sides in tasks:
            measure(sides, inp, sizes, sp, rep)
        print(f"rep {rep + 1}/{args.reps} done in {time.perf_counter() - t0:.1f} s", flush=True)
    failed += report(tasks, args.reps)
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


def quality_report(rows: list, formats: list, widths: list, failed: list) -> dict:
    """Per format and width: the project's bytes over pyvips' bytes at the same score."""
    import app

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
    app.print_table(out, [*head, "target", "result"])
    return matched


def report(tasks: list, reps: int) -> list[str]:
    import resource
    from statistics import median

    import app

    parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    failed, rows, memory, overheads = [], [], [], []
    for inp, what, _, _, sides in tasks:
        ours, vips = sides["project"], sides["vips"]
        name, full = inp["name"], what.startswith("full")
        target = TARGET_FULL_SET if full else TARGET_SINGLE_JPEG
        ratios = [p / max(1e-6, v) for p, v in zip(ours["render_s"], vips["render_s"], strict=True)]
        procs = [p / max(1e-6, v) for p, v in zip(ours["proc_s"], vips["proc_s"], strict=True)]
        ratio = median(ratios)
        if ratio > target:
            failed.append(f"{name} {what}")
        rows.append(
            [name, what, f"{median(ours['render_s']):.3f}", f"{median(vips['render_s']):.3f}"]
        )
        rows[-1] += [f"{ratio:.2f}x", f"<={target:.1f}x", "PASS" if ratio <= target else "FAIL"]
        rows[-1] += [
            f"{median(procs):.2f}x",
            f"{ours['bytes'][-1] / 1024:.0f}/{vips['bytes'][-1] / 1024:.0f}",
        ]
        rest = [
            median(
                a - b - c for a, b, c in zip(s["proc_s"], s["render_s"], s["import_s"], strict=True)
            )
            for s in (ours, vips)
        ]
        imports = [f"{median(s['import_s']):.3f}" for s in (ours, vips)]
        overheads.append([name, what, *imports, *(f"{r:.3f}" for r in rest)])
        if full:
            peak = max(ours["rss_kb"]) / 1024
            verdict = ["-", "-"]
            if name == MEMORY_INPUT:
                verdict = [f"<={TARGET_PEAK_MB:.0f}", "PASS" if peak <= TARGET_PEAK_MB else "FAIL"]
                if peak > TARGET_PEAK_MB:
                    failed.append(f"{name} peak memory")
            mb = [max(x) / 1024 for x in (ours["import_kb"], ours["hwm_kb"], vips["rss_kb"])]
            memory.append([name, f"{peak:.1f}", *(f"{x:.1f}" for x in mb), *verdict])
    print(
        "\nTimes: medians over reps of the rendering alone (decode to encoded bytes), each side"
        "\nin a fresh process. ratio = median of the per-rep project/pyvips ratios (the verdict);"
        "\nproc ratio: the whole child processes instead; out KB: encoded bytes of one run."
    )
    head = ["input", "what", "project s", "pyvips s", "ratio", "target", "result", "proc ratio"]
    app.print_table(rows, [*head, "out KB proj/vips"])
    print("\nPeak memory of the full-set child (max over reps, MB), 'after imports' included:")
    head = ["input", "project peak", "after imports", "own VmHWM", "pyvips peak", "target"]
    app.print_table(memory, [*head, "result"])
    print("\nOverheads (medians, s): imports and Python start+exit, outside the times above.")
    head = ["input", "what", "imports proj", "imports vips", "start+exit proj", "start+exit vips"]
    app.print_table(overheads, head)
    print(f"\nParent RSS {parent_mb:.1f} MB (a floor on every child's ru_maxrss).")
    if reps < 5:
        print(f"Only {reps} rep(s): medians are indicative, use --reps 5 or more.")
    return failed


if __name__ == "__main__":
    sys.exit(main())
