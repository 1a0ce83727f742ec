#!/usr/bin/env python
"""The gallery's rendition pipeline against Debian's ``vipsthumbnail``. See bench/README.md.

Every measurement runs in a fresh process. The parent never imports Pillow: Linux charges a
child's pre-exec memory (the parent's) to the child's ru_maxrss, so a fat parent would
inflate every peak-RSS figure; the children import only what they need for the same reason.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
TARGET_FULL_SET = 1.0  # project / vips, full 9-file set
TARGET_SINGLE_JPEG = 1.2  # project / vips, one JPEG rendition
TARGET_PEAK_MB = 100.0  # project child's peak RSS on the 48 MP JPEG (imports included)
MEMORY_INPUT = "48mp-jpeg"
VIPS_EXT = {"jpeg": "jpg", "webp": "webp", "avif": "avif"}  # the suffix picks vips' saver
Size = tuple[int, int]

# ---------------------------------------------------------------------------------------
# Child side: everything that imports Pillow or the project runs here.


def vm_kb(name: str) -> int:
    """A field of /proc/self/status in KB (VmRSS = now, VmHWM = this process's peak)."""
    with open("/proc/self/status") as fh:
        return next((int(x.split()[1]) for x in fh if x.startswith(name + ":")), 0)


def import_project() -> Any:
    """gallery.images as a worker imports it (it needs Pillow only, not Django)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")
    from gallery import images

    images.register_heif()
    return images


def child_project(path: str, w: int, h: int, sizes: list[Size], formats: list[str]) -> None:
    """Render the full frame as the project builds a photo's renditions; one JSON line."""
    t0 = time.perf_counter()
    images = import_project()
    import_s, import_kb = time.perf_counter() - t0, vm_kb("VmRSS")
    with open(path, "rb") as fp:
        t0 = time.perf_counter()
        out = images.render_crop(
            fp, images.centred_crop(w, h, w / h), sizes, formats=tuple(formats)
        )
        render_s = time.perf_counter() - t0
    result = {"import_s": import_s, "render_s": render_s, "import_kb": import_kb}
    print(json.dumps(result | {"hwm_kb": vm_kb("VmHWM"), "bytes": sum(len(o[3]) for o in out)}))


def child_profile(path: str, w: int, h: int, sizes: list[Size], formats: list[str]) -> None:
    import cProfile
    import pstats

    images = import_project()
    with open(path, "rb") as fp, cProfile.Profile() as profiler:
        images.render_crop(fp, images.centred_crop(w, h, w / h), sizes, formats=tuple(formats))
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(14)


def photo_like(size: Size, seed: int) -> Any:
    """An RGB image with a photo's statistics, so the encoders do real work: a synthetic
    skin patch upscaled, a colour card and a ruler (sharp edges, saturated flats), hair-like
    strokes, then sensor-like noise (camera JPEGs' ~0.25 B/px is what decoding costs)."""
    import random

    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    from gallery.demo_images import skin_pair

    (w, h), rng = size, random.Random(seed)
    im = skin_pair(seed, 3, "acne-scars", size=(1600, 1200))[0].resize(
        size, Image.Resampling.BICUBIC
    )
    draw, cell = ImageDraw.Draw(im), w // 40
    for row in range(4):
        for col in range(6):
            x, y = cell + col * cell, cell + row * cell
            colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            draw.rectangle((x, y, x + cell - 4, y + cell - 4), fill=colour)
    y0 = h - h // 12
    draw.rectangle((w // 10, y0, w - w // 10, y0 + h // 40), fill=(245, 245, 240))
    for i, x in enumerate(range(w // 10, w - w // 10, max(4, w // 400))):
        tick = h // 60 if i % 10 == 0 else h // 120
        draw.line((x, y0, x, y0 + tick), fill=(20, 20, 20), width=max(1, w // 2000))
    for _ in range(60):
        x, y = rng.randrange(w), rng.randrange(h)
        end = (x + rng.randrange(-w // 8, w // 8), y + rng.randrange(-h // 8, h // 8))
        draw.line((x, y, *end), fill=(60, 40, 30), width=max(1, w // 1500))
    # Luma grain of up to +-10 levels, slightly blurred (demosaicing correlates neighbours)
    # and re-stretched, plus +-3 levels of independent chroma noise.
    luma, chroma = 10, 3
    grain = Image.frombytes("L", size, rng.randbytes(w * h)).filter(ImageFilter.GaussianBlur(0.7))
    grain = grain.point(
        [max(0, min(255, (v - 128) * 3 + 128)) * 2 * luma // 255 for v in range(256)]
    )
    im = ImageChops.add(im, Image.merge("RGB", (grain, grain, grain)), offset=-luma)
    noise = Image.frombytes("RGB", size, rng.randbytes(w * h * 3))
    return ImageChops.add(
        im, noise.point([v * 2 * chroma // 255 for v in range(256)] * 3), offset=-chroma
    )


def child_inputs(outdir: str, quick: bool) -> None:
    """Write the test photos (with camera EXIF) and print their facts and the encoders'."""
    images = import_project()
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112], exif[0x010F], exif[0x0110] = 1, "BenchCam", "BC-1"  # Orientation, Make, Model
    exif[0x8769] = {0x9003: "2026:05:01 10:00:00", 0x9011: "+02:00"}  # DateTimeOriginal
    specs = [("12mp-jpeg", (4000, 3000), "JPEG")]
    if not quick:
        specs += [("48mp-jpeg", (8000, 6000), "JPEG"), ("12mp-heic", (4000, 3000), "HEIF")]
    facts = []
    for seed, (name, (w, h), fmt) in enumerate(specs, start=1):
        t0 = time.perf_counter()
        path = Path(outdir) / f"{name}.{'jpg' if fmt == 'JPEG' else 'heic'}"
        photo_like((w, h), seed).save(path, format=fmt, quality=90, exif=exif.tobytes())
        # pair_output_sizes tops the widths with min(source, 1600): a wider source yields
        # 1600 twice. The rendition set is the distinct sizes (9 files).
        produced = images.pair_output_sizes([(w, h)], w / h)
        facts.append(
            {"name": name, "path": str(path), "width": w, "height": h, "produced": produced}
            | {"sizes": list(dict.fromkeys(produced)), "bytes": path.stat().st_size}
            | {"seconds": time.perf_counter() - t0}
        )
    Image.new("RGB", (64, 48), (128, 100, 90)).save(Path(outdir) / "tiny.jpg", quality=90)
    formats = list(images.RENDITION_FORMATS)
    print(json.dumps({"inputs": facts, "options": images.ENCODE_OPTIONS, "formats": formats}))


def child_main(argv: list[str]) -> int:
    """A positional protocol rather than argparse, which would add ~1.6 MB to every child."""
    if argv[0] == "inputs":
        child_inputs(argv[1], quick=argv[2:] == ["quick"])
        return 0
    path, upright, sizes, *formats = argv[1:]
    w, h = (int(v) for v in upright.split("x"))
    pairs = [(int(a), int(b)) for a, b in (s.split("x") for s in sizes.split(","))]
    child = {"project": child_project, "profile": child_profile}[argv[0]]
    child(path, w, h, pairs, formats)
    return 0


# ---------------------------------------------------------------------------------------
# Parent side: spawn, time and compare. Standard library only.

VIPS = "/usr/bin/vipsthumbnail"


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
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(
                f"{' '.join(cmd)} exited {proc.returncode}:\n{err.read().decode()[-3000:]}"
            )
    return Run(wall, usage.ru_maxrss, stdout)


def vips_options(fmt: str, opts: dict[str, Any], version: tuple[int, ...]) -> str:
    """The ``[...]`` save options that make vips encode like ENCODE_OPTIONS[fmt]."""
    parts = [f"Q={opts['quality']}"]
    if fmt == "jpeg":
        parts += ["interlace"] * bool(opts.get("progressive")) + ["optimize-coding"] * bool(
            opts.get("optimize")
        )
    elif fmt == "webp":  # Pillow's method and vips' effort are both libwebp's method
        parts.append(f"effort={opts.get('method', 4)}")
    else:
        # Pillow's speed and vips' 9 - effort both reach libaom as cpu-used; Pillow writes
        # 8-bit AVIF. The libaom builds differ (Pillow's wheel bundles its own): sizes shown.
        effort = max(0, min(9, 9 - opts.get("speed", 6)))
        parts += [f"effort={effort}", "bitdepth=8", "compression=av1"]
    # No metadata in the project's output; libvips 8.15 replaced `strip` with `keep`.
    return ",".join([*parts, "keep=none" if version >= (8, 15, 0) else "strip"])


@dataclass
class Pair:
    """Paired measurements of one task (input x what) across reps."""

    project_s: list[float] = field(default_factory=list)  # render_crop only
    proc_s: list[float] = field(default_factory=list)  # the project's whole child process
    import_s: list[float] = field(default_factory=list)
    vips_s: list[float] = field(default_factory=list)  # sum over invocations
    rss_kb: list[int] = field(default_factory=list)
    import_kb: list[int] = field(default_factory=list)
    hwm_kb: list[int] = field(default_factory=list)
    vips_rss_kb: list[int] = field(default_factory=list)  # max over invocations
    bytes: tuple[int, int] = (0, 0)  # project, vips

    def ratios(self, project: list[float], vips_startup: float = 0.0) -> list[float]:
        return [p / max(1e-6, v - vips_startup) for p, v in zip(project, self.vips_s, strict=True)]


def project_cmd(kind: str, inp: dict[str, Any], sizes: list[Size], formats: list[str]) -> list[str]:
    size_text = ",".join(f"{w}x{h}" for w, h in sizes)
    upright = f"{inp['width']}x{inp['height']}"
    return [sys.executable, str(SCRIPT), "--child", kind, inp["path"], upright, size_text, *formats]


def measure(
    pair: Pair, inp: dict, sizes: list[Size], formats: list[str], opts: dict, out: Path, rep: int
) -> None:
    def project() -> None:
        run = run_child(project_cmd("project", inp, sizes, formats))
        data = json.loads(run.stdout)
        pair.project_s.append(data["render_s"])
        pair.proc_s.append(run.wall_s)
        pair.import_s.append(data["import_s"])
        pair.rss_kb.append(run.maxrss_kb)
        pair.import_kb.append(data["import_kb"])
        pair.hwm_kb.append(data["hwm_kb"])
        pair.bytes = (data["bytes"], pair.bytes[1])

    def vips() -> None:  # one process per output: vipsthumbnail makes one size per call
        runs, size = [], 0
        for (width, _), fmt in ((s, f) for s in sizes for f in formats):
            path = out / f"{inp['name']}-{width}.{VIPS_EXT[fmt]}"
            runs.append(
                run_child([VIPS, inp["path"], "--size", f"{width}x", "-o", f"{path}[{opts[fmt]}]"])
            )
            size += path.stat().st_size
        pair.vips_s.append(sum(r.wall_s for r in runs))
        pair.vips_rss_kb.append(max(r.maxrss_kb for r in runs))
        pair.bytes = (pair.bytes[0], size)

    # Alternate which side goes first, so neither always gets the cooler CPU and caches.
    for step in (project, vips) if rep % 2 == 0 else (vips, project):
        step()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:  # before any parent-only import
        return child_main(argv[1:])
    import argparse
    import re
    import shutil
    import subprocess
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions (5)")
    parser.add_argument("--quick", action="store_true", help="1 rep, 12 MP JPEG only")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir of inputs")
    parser.add_argument("--profile", action="store_true", help="also cProfile the largest JPEG")
    args = parser.parse_args(argv)
    reps = 1 if args.quick else args.reps
    if reps < 1 or not Path(VIPS).exists():
        parser.error(f"need --reps >= 1 and {VIPS} (apt-get install libvips-tools)")
    found = re.search(
        r"(\d+)\.(\d+)\.(\d+)", subprocess.check_output([VIPS, "--vips-version"], text=True)
    )
    version = tuple(int(g) for g in found.groups()) if found else (0, 0, 0)
    workdir = Path(tempfile.mkdtemp(prefix="bench-images-"))  # never in the repository
    try:
        return bench(args, reps, version, workdir)
    finally:
        if args.keep:
            print(f"\nInputs and vips outputs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def bench(args: Any, reps: int, version: tuple[int, ...], workdir: Path) -> int:
    import statistics

    v = ".".join(map(str, version))
    print(f"Python {sys.version.split()[0]}, vipsthumbnail {v}, {os.cpu_count()} CPUs, reps={reps}")
    print("Generating inputs ...", flush=True)
    gen = [sys.executable, str(SCRIPT), "--child", "inputs", str(workdir)] + ["quick"] * args.quick
    setup = json.loads(run_child(gen).stdout)
    inputs, formats = setup["inputs"], setup["formats"]
    for inp in inputs:
        mb = inp["bytes"] / 1e6
        print(
            f"  {inp['name']}: {inp['width']}x{inp['height']}, {mb:.1f} MB, "
            f"made in {inp['seconds']:.1f} s"
        )
        if len(inp["produced"]) != len(inp["sizes"]):
            print(
                f"  NOTE: pair_output_sizes returned {inp['produced']} (a duplicate); "
                "benchmarking the distinct sizes."
            )
    opts = {fmt: vips_options(fmt, o, version) for fmt, o in setup["options"].items()}
    print("vips save options: " + "; ".join(f"{k}=[{v}]" for k, v in opts.items()))
    (workdir / "out").mkdir()
    tasks = []  # the full set per input, then each single JPEG rendition
    for inp in inputs:
        sizes = [tuple(s) for s in inp["sizes"]]
        tasks.append((inp, f"full set ({len(sizes) * len(formats)})", sizes, formats, Pair()))
        tasks += [(inp, f"jpeg {s[0]}", [s], ["jpeg"], Pair()) for s in sizes]
    print("Warm-up ...", flush=True)  # page cache, shared libraries
    for inp, what, sizes, fmts, _ in tasks:
        if what.startswith("full"):
            measure(Pair(), inp, sizes, fmts, opts, workdir / "out", 0)
    for rep in range(reps):
        t0 = time.perf_counter()
        for inp, _, sizes, fmts, pair in tasks:
            measure(pair, inp, sizes, fmts, opts, workdir / "out", rep)
        print(f"rep {rep + 1}/{reps} done in {time.perf_counter() - t0:.1f} s", flush=True)
    # vipsthumbnail's fixed cost per invocation is inside every vips figure; the project's
    # render_s leaves its start-up out.
    tiny = [VIPS, str(workdir / "tiny.jpg"), "--size", "32x", "-o", f"{workdir}/tiny-out.jpg"]
    startup = statistics.median(run_child(tiny).wall_s for _ in range(7))
    failed = report(tasks, startup, reps)
    if args.profile:
        big = max((t for t in tasks if "jpeg" in t[0]["name"]), key=lambda t: t[0]["width"])
        print(f"\ncProfile of render_crop, full set, {big[0]['name']} (sorted by own time):")
        print(run_child(project_cmd("profile", big[0], big[2], formats)).stdout)
    if failed:
        print(f"\n{len(failed)} target(s) missed: {', '.join(failed)}")
    return 1 if failed and args.strict else 0


def report(tasks: list, startup: float, reps: int) -> list[str]:
    import resource
    from statistics import median

    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.path.insert(0, str(SCRIPT.parent))
    from app import print_table  # imported now: the children have all run

    failed, rows, memory, overheads = [], [], [], []
    for inp, what, sizes, fmts, p in tasks:
        n, name = len(sizes) * len(fmts), inp["name"]
        ratio, target = (
            median(p.ratios(p.project_s)),
            TARGET_FULL_SET if what.startswith("full") else TARGET_SINGLE_JPEG,
        )
        if ratio > target:
            failed.append(f"{name} {what}")
        times = [median(p.project_s), median(p.vips_s)]
        net = median(p.ratios(p.project_s, startup * n))
        rows.append([name, what, *(f"{x:.3f}" for x in times), f"{ratio:.2f}x", f"<={target:.1f}x"])
        rows[-1] += ["PASS" if ratio <= target else "FAIL", f"{median(p.ratios(p.proc_s)):.2f}x"]
        rows[-1] += [f"{net:.2f}x", f"{p.bytes[0] / 1024:.0f}/{p.bytes[1] / 1024:.0f}"]
        rest = median(a - b - c for a, b, c in zip(p.proc_s, p.project_s, p.import_s, strict=True))
        overheads.append(
            [name, what, f"{median(p.import_s):.3f}", f"{rest:.3f}", f"{startup * n:.3f} (x {n})"]
        )
        if what.startswith("full"):
            peak, ok = (
                max(p.rss_kb) / 1024,
                name != MEMORY_INPUT or max(p.rss_kb) / 1024 <= TARGET_PEAK_MB,
            )
            if not ok:
                failed.append(f"{name} peak memory")
            verdict = (
                [f"<={TARGET_PEAK_MB:.0f}", "PASS" if ok else "FAIL"]
                if name == MEMORY_INPUT
                else ["-", "-"]
            )
            mb = [max(x) / 1024 for x in (p.import_kb, p.hwm_kb, p.vips_rss_kb)]
            memory.append([name, f"{peak:.1f}", *(f"{x:.1f}" for x in mb), *verdict])
    print(
        "\nTimes: medians over reps. project s = render_crop only, in a fresh process. vips s"
        " = the\nvipsthumbnail processes (one per output, start-up included). ratio = median of"
        " the per-rep\nproject/vips ratios (the verdict); proc ratio: the project's whole child"
        " process instead;\nnet ratio: vips' start-up taken off; out KB: encoded bytes of one run."
    )
    head = ["input", "what", "project s", "vips s", "ratio", "target", "result", "proc ratio"]
    print_table(rows, [*head, "net ratio", "out KB proj/vips"])
    print("\nPeak memory of the full-set child (max over reps, MB), 'after imports' included:")
    head = ["input", "project peak", "after imports", "own VmHWM", "vips peak", "target"]
    print_table(memory, [*head, "result"])
    print("\nOverheads (medians, s): the project's outside 'project s', vips' inside 'vips s'.")
    head = ["input", "what", "child imports", "python start+exit", "vips start-up x runs"]
    print_table(overheads, head)
    print(
        f"\nvipsthumbnail start-up (64x48 JPEG in, 32 px out): {startup * 1000:.1f} ms per "
        f"invocation. Parent RSS {parent:.1f} MB (a floor on every child's ru_maxrss)."
    )
    if reps < 5:
        print(f"Only {reps} rep(s): medians are indicative, use --reps 5 or more.")
    return failed


if __name__ == "__main__":
    sys.exit(main())
