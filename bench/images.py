#!/usr/bin/env python
"""The gallery's rendition pipeline against pyvips in one process. See bench/README.md."""

import io
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
SIDES = ("project", "vips")


# Child side: everything that imports Pillow, pyvips or the project runs here.
def import_project() -> Any:
    """gallery.images as a worker imports it (it needs Pillow only, not Django)."""
    sys.path.insert(0, str(ROOT))
    from gallery import images

    images.register_heif()
    return images


def vips_decode(pyvips: Any, path: str, size: Size) -> Any:
    """One decode at the largest output size; a HEIC's pixels come from pillow-heif."""
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


def child_render(side: str, path: str, width: int, height: int, sizes: list, spec: dict) -> None:
    formats = spec["formats"]
    if side == "project":
        images = import_project()
        crop = images.centred_crop(width, height, width / height)
        with open(path, "rb") as fp:
            t0 = time.perf_counter()
            out = [o[3] for o in images.render_crop(fp, crop, sizes, formats=tuple(formats))]
    else:
        import pyvips

        t0 = time.perf_counter()
        big = vips_decode(pyvips, path, max(sizes))
        qs, opts = spec["vips_q"], spec["options"]
        out = [vips_encode(big, s, f, opts[f], qs[f]) for s in sizes for f in formats]
    print(json.dumps({"render_s": time.perf_counter() - t0, "bytes": sum(map(len, out))}))


def child_quality(path: str, width: int, height: int, sizes: list, spec: dict) -> None:
    """Rows [side, format, width, q, bytes, SSIMULACRA2] for the project and pyvips."""
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

    rows = []
    crop = images.centred_crop(width, height, width / height)
    big = vips_decode(pyvips, path, max(sizes))
    for fmt in spec["formats"]:
        with open(path, "rb") as fp:
            outputs = images.render_crop(fp, crop, sizes, formats=(fmt,))
        for _, ow, oh, data in outputs:
            ours = score((ow, oh), data)
            rows.append(["project", fmt, ow, spec["options"][fmt]["quality"], len(data), ours])
            lo, hi = 1, 100  # bisect pyvips' Q to the two integer Qs that bracket our score
            while hi - lo > 1:
                mid = (lo + hi) // 2
                data = vips_encode(big, (ow, oh), fmt, spec["options"][fmt], mid)
                rows.append(["vips", fmt, ow, mid, len(data), score((ow, oh), data)])
                lo, hi = (mid, hi) if rows[-1][5] < ours else (lo, mid)
    print(json.dumps(rows))


def child_inputs(outdir: str, quick: bool) -> None:
    images = import_project()
    import app

    specs = [("12mp-jpeg", (4000, 3000), "JPEG")]
    if not quick:
        specs += [("48mp-jpeg", (8000, 6000), "JPEG"), ("12mp-heic", (4000, 3000), "HEIF")]
    facts = []
    for seed, (name, (w, h), fmt) in enumerate(specs, start=1):
        t0 = time.perf_counter()
        path = Path(outdir) / f"{name}.{'jpg' if fmt == 'JPEG' else 'heic'}"
        photo = app.camera_photo((w, h), seed)
        photo.save(path, format=fmt, quality=90, exif=app.camera_exif())
        sizes = images.pair_output_sizes([(w, h)], w / h)
        fact = {"name": name, "path": str(path), "width": w, "height": h, "sizes": sizes}
        facts.append(fact | {"mb": path.stat().st_size / 1e6, "seconds": time.perf_counter() - t0})
    formats = {"formats": list(images.RENDITION_FORMATS)}
    print(json.dumps({"inputs": facts, "options": images.ENCODE_OPTIONS} | formats))


def child_main(kind: str, job: str) -> None:
    """A JSON argument rather than argparse, which would add ~1.6 MB to every child."""
    args = json.loads(job)
    if kind != "inputs":
        args["sizes"] = [tuple(size) for size in args["sizes"]]
    children = {"inputs": child_inputs, "quality": child_quality}
    children.get(kind, partial(child_render, kind))(**args)


# Parent side: spawn, time and compare. Standard library only (app.py too).
def run_child(kind: str, job: dict) -> tuple[Any, int]:
    import subprocess
    import tempfile

    import app

    cmd = [sys.executable, str(SCRIPT), "--child", kind, json.dumps(job)]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        out, usage = app.reap(proc)
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed:\n{err.read().decode()[-3000:]}")
    return json.loads(out), usage.ru_maxrss


def job(inp: dict, sizes: list[Size], spec: dict) -> dict:
    return {key: inp[key] for key in ("path", "width", "height")} | {"sizes": sizes, "spec": spec}


def measure(sides: defaultdict, child: dict, rep: int) -> None:
    for kind in SIDES if rep % 2 == 0 else SIDES[::-1]:
        data, maxrss = run_child(kind, child)
        for key, value in (data | {"rss_kb": maxrss}).items():
            sides[kind, key].append(value)


def verdict(value: float, target: float, what: str, failed: list[str]) -> str:
    if value > target:
        failed.append(what)
    return "PASS" if value <= target else "FAIL"


def main() -> int | None:
    if sys.argv[1:2] == ["--child"]:  # before any parent-only import
        return child_main(*sys.argv[2:])
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions (5)")
    parser.add_argument("--quick", action="store_true", help="1 rep, 12 MP JPEG only")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    parser.add_argument("--no-quality", action="store_true", help="skip the SSIMULACRA2 part")
    args = parser.parse_args()
    args.reps = 1 if args.quick else args.reps
    if args.reps < 1:
        parser.error("need --reps >= 1")
    with tempfile.TemporaryDirectory(prefix="bench-images-", ignore_cleanup_errors=True) as tmp:
        return bench(args, Path(tmp))


def bench(args: Any, workdir: Path) -> int:
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, reps={args.reps}")
    print("Generating inputs ...", flush=True)
    setup, _ = run_child("inputs", {"outdir": str(workdir), "quick": args.quick})
    inputs, formats, options = setup["inputs"], setup["formats"], setup["options"]
    for inp in inputs:
        print("  {name}: {width}x{height}, {mb:.1f} MB, made in {seconds:.1f} s".format(**inp))
    print("project options: " + "; ".join(f"{k}={v}" for k, v in options.items()))
    failed: list[str] = []
    spec = {"formats": formats, "options": options}
    spec["vips_q"] = {f: o["quality"] for f, o in options.items()}
    if not args.no_quality:
        inp = next(i for i in inputs if i["name"] == QUALITY_INPUT)
        print(f"SSIMULACRA2 on {inp['name']}, bisecting pyvips' Q ...", flush=True)
        quality, _ = run_child("quality", job(inp, inp["sizes"], spec))
        matched = quality_report(quality, formats, [s[0] for s in inp["sizes"]], failed)
        spec["vips_q"] |= {f: round(matched[f]) for f in formats if matched.get(f)}
    print("pyvips Q for the timing: " + ", ".join(f"{k}={v}" for k, v in spec["vips_q"].items()))
    jpeg = spec | {"formats": ["jpeg"]}
    tasks = []  # (input, what, child's job, figures[side, key]): the full set, each single JPEG
    for inp in inputs:
        name, sizes = inp["name"], inp["sizes"]
        full = f"full set ({len(sizes) * len(formats)})"
        tasks.append((name, full, job(inp, sizes, spec), defaultdict(list)))
        tasks += [(name, f"jpeg {s[0]}", job(inp, [s], jpeg), defaultdict(list)) for s in sizes]
    print("Warm-up ...", flush=True)  # page cache, shared libraries
    for _, what, child, _ in tasks:
        if what.startswith("full"):
            measure(defaultdict(list), child, 0)
    for rep in range(args.reps):
        t0 = time.perf_counter()
        for _, _, child, sides in tasks:
            measure(sides, child, rep)
        print(f"rep {rep + 1}/{args.reps} done in {time.perf_counter() - t0:.1f} s", flush=True)
    report(tasks, args.reps, failed)
    if failed:
        print(f"\n{len(failed)} target(s) missed: {', '.join(failed)}")
    return 1 if failed and args.strict else 0


def at_score(curve: list[list], score: float) -> tuple[float | None, float | None]:
    """pyvips' Q and bytes (log-interpolated) at ``score`` on its curve."""
    points = sorted((r[5], r[3], r[4]) for r in curve)
    for (s0, q0, b0), (s1, q1, b1) in zip(points, points[1:], strict=False):
        if s0 <= score <= s1:
            t = (score - s0) / (s1 - s0) if s1 > s0 else 0.0
            return q0 + t * (q1 - q0), math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0)))
    return None, None  # outside the swept range: no honest figure


def quality_report(rows: list, formats: list, widths: list, failed: list) -> dict:
    import app

    out, matched = [], {}
    for fmt in formats:
        ours_total = vips_total = 0.0
        for width in widths:
            [(_, _, _, q, ours, score)] = [r for r in rows if r[:3] == ["project", fmt, width]]
            curve = [r for r in rows if r[:3] == ["vips", fmt, width]]
            vq, vbytes = at_score(curve, score)
            if width == max(widths):
                matched[fmt] = vq
            ratio = ours / vbytes if vbytes else float("inf")
            ours_total += ours
            vips_total += vbytes or 0.0
            result = verdict(ratio, TARGET_BYTES, f"{fmt} {width} bytes at equal score", failed)
            vtext = f"{vbytes / 1024:.1f}" if vbytes else "out of range"
            qtext = f"{vq:.0f}" if vq else "-"
            out.append([fmt, width, q, f"{score:.1f}", f"{ours / 1024:.1f}", qtext, vtext])
            out[-1] += [f"{ratio:.2f}x", f"<={TARGET_BYTES:.1f}x", result]
        whole = ours_total / vips_total if vips_total else float("inf")
        out.append([fmt, "all", "", "", f"{ours_total / 1024:.1f}", "", f"{vips_total / 1024:.1f}"])
        out[-1] += [f"{whole:.2f}x", "", ""]
    print("\nBytes at equal SSIMULACRA2 (vs the source downscaled by Lanczos 3): pyvips' KB and")
    print("Q interpolated between the two Qs that bracket the project's score (log bytes):")
    head = ["format", "width", "our q", "score", "our KB", "vips Q", "vips KB", "ratio"]
    app.print_table(out, [*head, "target", "result"])
    return matched


def report(tasks: list, reps: int, failed: list[str]) -> None:
    from statistics import median

    import app

    rows, memory = [], []
    for name, what, _, sides in tasks:
        full = what.startswith("full")
        target = TARGET_FULL_SET if full else TARGET_SINGLE_JPEG
        pairs = zip(sides["project", "render_s"], sides["vips", "render_s"], strict=True)
        ratio = median(p / max(1e-6, v) for p, v in pairs)
        rows.append([name, what, *(f"{median(sides[k, 'render_s']):.3f}" for k in SIDES)])
        rows[-1] += [f"{ratio:.2f}x", f"<={target:.1f}x"]
        rows[-1] += [verdict(ratio, target, f"{name} {what}", failed)]
        rows[-1] += ["/".join(f"{sides[k, 'bytes'][-1] / 1024:.0f}" for k in SIDES)]
        if full:
            peak, vips_peak = (max(sides[k, "rss_kb"]) / 1024 for k in SIDES)
            check = ["-", "-"]
            if name == MEMORY_INPUT:
                result = verdict(peak, TARGET_PEAK_MB, f"{name} peak memory", failed)
                check = [f"<={TARGET_PEAK_MB:.0f}", result]
            memory.append([name, f"{peak:.1f}", f"{vips_peak:.1f}", *check])
    print("\nTimes: medians over reps of the rendering alone (decode to encoded bytes), each side")
    print("in a fresh process. ratio = median of the per-rep project/pyvips ratios (the verdict);")
    print("out KB: encoded bytes of one run.")
    head = ["input", "what", "project s", "pyvips s", "ratio", "target", "result"]
    app.print_table(rows, [*head, "out KB proj/vips"])
    print("\nPeak memory of the full-set child, imports included (ru_maxrss, max over reps, MB):")
    app.print_table(memory, ["input", "project peak", "pyvips peak", "target", "result"])
    if reps < 5:
        print(f"\nOnly {reps} rep(s): medians are indicative, use --reps 5 or more.")


if __name__ == "__main__":
    sys.exit(main())
