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
VIPS = "/usr/bin/vipsthumbnail"
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
        return next(int(x.split()[1]) for x in fh if x.startswith(name + ":"))


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
    import_s = time.perf_counter() - t0
    import_kb = vm_kb("VmRSS")
    crop = images.centred_crop(w, h, w / h)
    with open(path, "rb") as fp:
        t0 = time.perf_counter()
        out = images.render_crop(fp, crop, sizes, formats=tuple(formats))
        render_s = time.perf_counter() - t0
    result = {"import_s": import_s, "render_s": render_s, "import_kb": import_kb}
    result |= {"hwm_kb": vm_kb("VmHWM"), "bytes": sum(len(o[3]) for o in out)}
    print(json.dumps(result))


def child_profile(path: str, w: int, h: int, sizes: list[Size], formats: list[str]) -> None:
    import cProfile
    import pstats

    images = import_project()
    crop = images.centred_crop(w, h, w / h)
    with open(path, "rb") as fp, cProfile.Profile() as profiler:
        images.render_crop(fp, crop, sizes, formats=tuple(formats))
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(14)


def child_inputs(outdir: str, quick: bool) -> None:
    """Write the test photos (with camera EXIF) and print their facts and the encoders'."""
    images = import_project()
    import app
    from PIL import Image

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
        facts.append(
            {
                "name": name,
                "path": str(path),
                "width": w,
                "height": h,
                "sizes": sizes,
                "bytes": path.stat().st_size,
                "seconds": time.perf_counter() - t0,
            }
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


def vips_options(fmt: str, opts: dict[str, Any], version: tuple[int, ...]) -> str:
    """The ``[...]`` save options that make vips encode like ENCODE_OPTIONS[fmt]."""
    parts = [f"Q={opts['quality']}"]
    if fmt == "jpeg":
        if opts.get("progressive"):
            parts.append("interlace")
        if opts.get("optimize"):
            parts.append("optimize-coding")
    elif fmt == "webp":  # Pillow's method and vips' effort are both libwebp's method
        parts.append(f"effort={opts.get('method', 4)}")
    else:
        # Pillow's speed and vips' 9 - effort both reach libaom as cpu-used; Pillow writes
        # 8-bit AVIF. The libaom builds differ (Pillow's wheel bundles its own): sizes shown.
        effort = max(0, min(9, 9 - opts.get("speed", 6)))
        parts += [f"effort={effort}", "bitdepth=8", "compression=av1"]
    # No metadata in the project's output; libvips 8.15 replaced `strip` with `keep`.
    parts.append("keep=none" if version >= (8, 15, 0) else "strip")
    return ",".join(parts)


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
    project_bytes: int = 0
    vips_bytes: int = 0

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
        pair.project_bytes = data["bytes"]

    def vips() -> None:  # one process per output: vipsthumbnail makes one size per call
        runs = []
        pair.vips_bytes = 0
        for width, _ in sizes:
            for fmt in formats:
                path = out / f"{inp['name']}-{width}.{VIPS_EXT[fmt]}"
                output = f"{path}[{opts[fmt]}]"
                runs.append(run_child([VIPS, inp["path"], "--size", f"{width}x", "-o", output]))
                pair.vips_bytes += path.stat().st_size
        pair.vips_s.append(sum(r.wall_s for r in runs))
        pair.vips_rss_kb.append(max(r.maxrss_kb for r in runs))

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
    parser.add_argument("--profile", action="store_true", help="also cProfile the largest JPEG")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps = 1
    if args.reps < 1 or not Path(VIPS).exists():
        parser.error(f"need --reps >= 1 and {VIPS} (apt-get install libvips-tools)")
    found = re.search(
        r"(\d+)\.(\d+)\.(\d+)", subprocess.check_output([VIPS, "--vips-version"], text=True)
    )
    version = tuple(int(g) for g in found.groups())  # type: ignore[union-attr]
    workdir = Path(tempfile.mkdtemp(prefix="bench-images-"))  # never in the repository
    try:
        return bench(args, version, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def bench(args: Any, version: tuple[int, ...], workdir: Path) -> int:
    import statistics

    v = ".".join(map(str, version))
    python = sys.version.split()[0]
    print(f"Python {python}, vipsthumbnail {v}, {os.cpu_count()} CPUs, reps={args.reps}")
    print("Generating inputs ...", flush=True)
    gen = [sys.executable, str(SCRIPT), "--child", "inputs", str(workdir)]
    if args.quick:
        gen.append("quick")
    setup = json.loads(run_child(gen).stdout)
    inputs, formats = setup["inputs"], setup["formats"]
    for inp in inputs:
        print(
            f"  {inp['name']}: {inp['width']}x{inp['height']}, {inp['bytes'] / 1e6:.1f} MB, "
            f"made in {inp['seconds']:.1f} s"
        )
    opts = {fmt: vips_options(fmt, o, version) for fmt, o in setup["options"].items()}
    print("vips save options: " + "; ".join(f"{k}=[{v}]" for k, v in opts.items()))
    out = workdir / "out"
    out.mkdir()
    tasks = []  # (input, what, sizes, formats, pair): the full set, then each single JPEG
    for inp in inputs:
        sizes = [tuple(s) for s in inp["sizes"]]
        tasks.append((inp, f"full set ({len(sizes) * len(formats)})", sizes, formats, Pair()))
        for size in sizes:
            tasks.append((inp, f"jpeg {size[0]}", [size], ["jpeg"], Pair()))
    print("Warm-up ...", flush=True)  # page cache, shared libraries
    for inp, what, sizes, fmts, _ in tasks:
        if what.startswith("full"):
            measure(Pair(), inp, sizes, fmts, opts, out, 0)
    for rep in range(args.reps):
        t0 = time.perf_counter()
        for inp, _, sizes, fmts, pair in tasks:
            measure(pair, inp, sizes, fmts, opts, out, rep)
        print(f"rep {rep + 1}/{args.reps} done in {time.perf_counter() - t0:.1f} s", flush=True)
    # vipsthumbnail's fixed cost per invocation is inside every vips figure; the project's
    # render_s leaves its start-up out.
    tiny = [VIPS, str(workdir / "tiny.jpg"), "--size", "32x", "-o", f"{workdir}/tiny-out.jpg"]
    startup = statistics.median(run_child(tiny).wall_s for _ in range(7))
    failed = report(tasks, startup, args.reps)
    if args.profile:
        full_jpegs = [t for t in tasks if "jpeg" in t[0]["name"] and t[1].startswith("full")]
        inp, _, sizes, fmts, _ = max(full_jpegs, key=lambda t: t[0]["width"])
        print(f"\ncProfile of render_crop, full set, {inp['name']} (sorted by own time):")
        print(run_child(project_cmd("profile", inp, sizes, fmts)).stdout)
    if failed:
        print(f"\n{len(failed)} target(s) missed: {', '.join(failed)}")
    return 1 if failed and args.strict else 0


def report(tasks: list, startup: float, reps: int) -> list[str]:
    import resource
    from statistics import median

    parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.path.insert(0, str(SCRIPT.parent))
    from app import print_table  # imported now: the children have all run

    failed, rows, memory, overheads = [], [], [], []
    for inp, what, sizes, fmts, p in tasks:
        n = len(sizes) * len(fmts)
        name = inp["name"]
        full = what.startswith("full")
        target = TARGET_FULL_SET if full else TARGET_SINGLE_JPEG
        ratio = median(p.ratios(p.project_s))
        if ratio > target:
            failed.append(f"{name} {what}")
        rows.append(
            [
                name,
                what,
                f"{median(p.project_s):.3f}",
                f"{median(p.vips_s):.3f}",
                f"{ratio:.2f}x",
                f"<={target:.1f}x",
                "PASS" if ratio <= target else "FAIL",
                f"{median(p.ratios(p.proc_s)):.2f}x",
                f"{median(p.ratios(p.project_s, startup * n)):.2f}x",
                f"{p.project_bytes / 1024:.0f}/{p.vips_bytes / 1024:.0f}",
            ]
        )
        rest = median(a - b - c for a, b, c in zip(p.proc_s, p.project_s, p.import_s, strict=True))
        imports = f"{median(p.import_s):.3f}"
        overheads.append([name, what, imports, f"{rest:.3f}", f"{startup * n:.3f} (x {n})"])
        if full:
            peak = max(p.rss_kb) / 1024
            verdict = ["-", "-"]
            if name == MEMORY_INPUT:
                verdict = [f"<={TARGET_PEAK_MB:.0f}", "PASS" if peak <= TARGET_PEAK_MB else "FAIL"]
                if peak > TARGET_PEAK_MB:
                    failed.append(f"{name} peak memory")
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
        f"invocation. Parent RSS {parent_mb:.1f} MB (a floor on every child's ru_maxrss)."
    )
    if reps < 5:
        print(f"Only {reps} rep(s): medians are indicative, use --reps 5 or more.")
    return failed


if __name__ == "__main__":
    sys.exit(main())
