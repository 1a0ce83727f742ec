#!/usr/bin/env python
"""Benchmark the gallery's rendition pipeline against Debian's ``vipsthumbnail``.

Usage::

    .venv/bin/python bench/images.py            # 5 interleaved reps, all inputs
    .venv/bin/python bench/images.py --quick    # smoke test: 1 rep, 12 MP JPEG only
    .venv/bin/python bench/images.py --reps 9 --strict --profile

What is measured, per input (12 MP JPEG, 48 MP JPEG, 12 MP HEIC, generated in a temp dir):

* the project's *full rendition set* (``render_crop`` of the full frame at the
  ``pair_output_sizes`` widths, in every format of ``RENDITION_FORMATS``: 9 files) against
  the sum of the 9 ``vipsthumbnail`` invocations that make the same files;
* each single JPEG rendition on its own (one ``render_crop`` call with one size and
  ``formats=("jpeg",)``) against one ``vipsthumbnail`` invocation.

Every measurement runs in a fresh process, so no run inherits a warm Pillow/libvips state
or the heap of an earlier one. The project's child times only ``render_crop`` (from
``Image.open`` to the last encoded byte) and reports its import time separately; the vips
time is the wall clock of the ``vipsthumbnail`` process, start-up included (there is no way
to split it), so the script also measures that fixed start-up cost on a tiny image for
reference. Peak memory is each child's RSS high-water mark from ``os.wait4``.

Project and vips runs are interleaved (the order swaps every rep) and compared by the
median of *paired* ratios, so drift in machine load hits both sides of each pair alike.

The parent process deliberately never imports Pillow or holds an image: Linux charges a
child's pre-``exec`` memory (the parent's, after fork/vfork) to the child's ``ru_maxrss``, so
a fat parent would inflate every peak-RSS figure. Inputs are generated in a child too. For
the same reason the children skip the parent's own imports (argparse, subprocess,
statistics, ...: ~4 MB) so that their peak is Python + Pillow + the project's work only.

The exit status is 0 (it is a benchmark) unless ``--strict`` is given and a target failed.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent  # the Django project root (holds gallery/ and clinic/)

# Targets from the issue.
TARGET_FULL_SET = 1.0  # project / vips, full 9-file set
TARGET_SINGLE_JPEG = 1.2  # project / vips, one JPEG rendition
TARGET_PEAK_MB = 100.0  # project child's peak RSS on the 48 MP JPEG (imports included)
MEMORY_INPUT = "48mp-jpeg"

# Project format name -> file extension vipsthumbnail uses to pick its saver.
VIPS_EXT = {"jpeg": "jpg", "webp": "webp", "avif": "avif"}

Size = tuple[int, int]


# ---------------------------------------------------------------------------------------
# Child side: everything that imports Pillow or the project runs here, in a fresh process.
# Only the light standard-library modules imported at the top are loaded in a child; the
# parent-only ones (argparse, subprocess, statistics, tempfile, shutil, re) are imported
# inside the parent's functions.


def _vm_kb(field_name: str) -> int:
    """A field of /proc/self/status in KB (VmRSS = now, VmHWM = this process's peak)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def _import_project() -> Any:
    """Import gallery.images the way a worker would, and register the HEIF opener.

    gallery.images imports only Pillow, so Django need not be set up; the settings module
    is still named so that an indirect ``django.conf`` access would find it.
    """
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")
    os.environ.setdefault("DJANGO_DEBUG", "on")
    from gallery import images

    images.register_heif()
    return images


def _parse_sizes(text: str) -> list[Size]:
    return [(int(w), int(h)) for w, h in (part.split("x") for part in text.split(","))]


def child_project(path: str, upright: Size, sizes: list[Size], formats: list[str]) -> None:
    """Render with the project's code and print timings and memory as one JSON line."""
    t_start = time.perf_counter()
    images = _import_project()
    import_s = time.perf_counter() - t_start
    rss_after_import_kb = _vm_kb("VmRSS")

    w, h = upright
    # Full frame, exactly as the project builds a photo's rendition set.
    crop = images.centred_crop(w, h, w / h)
    with open(path, "rb") as fp:
        t0 = time.perf_counter()
        out = images.render_crop(fp, crop, sizes, formats=tuple(formats))
        render_s = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "import_s": import_s,
                "render_s": render_s,
                "rss_after_import_kb": rss_after_import_kb,
                "hwm_kb": _vm_kb("VmHWM"),
                "outputs": [[fmt, ow, oh, len(data)] for fmt, ow, oh, data in out],
            }
        )
    )


def child_profile(path: str, upright: Size, sizes: list[Size], formats: list[str]) -> None:
    """cProfile one render_crop call and print where the time goes (for --profile)."""
    import cProfile
    import pstats

    images = _import_project()
    w, h = upright
    crop = images.centred_crop(w, h, w / h)
    profiler = cProfile.Profile()
    with open(path, "rb") as fp:
        profiler.enable()
        images.render_crop(fp, crop, sizes, formats=tuple(formats))
        profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(14)


def _photo_like(size: Size, seed: int) -> Any:
    """An RGB image with the statistics of a real photo, so the encoders do real work.

    A synthetic skin patch (smooth tone, texture, marks) upscaled to the target size, a
    colour card and ruler (sharp edges and saturated flats, as in clinical photos), then
    per-pixel sensor-like noise, which is what makes camera JPEGs expensive to decode.
    """
    import random

    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    from gallery.demo_images import skin_pair

    w, h = size
    base, _ = skin_pair(seed, 3, "acne-scars", size=(1600, 1200))
    im = base.resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(im)
    rng = random.Random(seed)
    # Colour card in the top-left corner: 6 x 4 patches.
    cell = w // 40
    for row in range(4):
        for col in range(6):
            colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            x, y = cell + col * cell, cell + row * cell
            draw.rectangle((x, y, x + cell - 4, y + cell - 4), fill=colour)
    # A ruler along the bottom: thin high-contrast lines.
    y0 = h - h // 12
    draw.rectangle((w // 10, y0, w - w // 10, y0 + h // 40), fill=(245, 245, 240))
    for i, x in enumerate(range(w // 10, w - w // 10, max(4, w // 400))):
        tick = h // 60 if i % 10 == 0 else h // 120
        draw.line((x, y0, x, y0 + tick), fill=(20, 20, 20), width=max(1, w // 2000))
    # Hair-like strokes across the skin.
    for _ in range(60):
        x, y = rng.randrange(w), rng.randrange(h)
        draw.line(
            (x, y, x + rng.randrange(-w // 8, w // 8), y + rng.randrange(-h // 8, h // 8)),
            fill=(60, 40, 30),
            width=max(1, w // 1500),
        )
    # Sensor-like noise, deterministic for the seed: luma grain of up to +-10 levels,
    # slightly blurred (demosaicing correlates neighbours) and re-stretched, plus +-3 levels
    # of independent chroma noise. This brings the files to a camera's bytes per pixel
    # (~0.25 B/px at quality 90), which is what sets the entropy-decoding cost.
    luma, chroma = 10, 3
    grain = Image.frombytes("L", size, rng.randbytes(w * h))
    grain = grain.filter(ImageFilter.GaussianBlur(0.7))
    grain = grain.point(
        [max(0, min(255, (v - 128) * 3 + 128)) * 2 * luma // 255 for v in range(256)]
    )
    im = ImageChops.add(im, Image.merge("RGB", (grain, grain, grain)), offset=-luma)
    noise = Image.frombytes("RGB", size, rng.randbytes(w * h * 3))
    noise = noise.point([v * 2 * chroma // 255 for v in range(256)] * 3)
    return ImageChops.add(im, noise, offset=-chroma)


def child_make_inputs(outdir: str, quick: bool) -> None:
    """Write the test photos into ``outdir`` and print their facts and the encoder settings."""
    images = _import_project()
    from PIL import Image

    out = Path(outdir)
    exif = Image.Exif()
    exif[0x0112] = 1  # Orientation: upright
    exif[0x010F] = "BenchCam"  # Make
    exif[0x0110] = "BC-1"  # Model
    exif[0x8769] = {0x9003: "2026:05:01 10:00:00", 0x9011: "+02:00"}  # DateTimeOriginal
    exif_bytes = exif.tobytes()

    specs: list[tuple[str, Size, str]] = [("12mp-jpeg", (4000, 3000), "jpeg")]
    if not quick:
        specs += [("48mp-jpeg", (8000, 6000), "jpeg"), ("12mp-heic", (4000, 3000), "heic")]
    facts = []
    for seed, (name, size, fmt) in enumerate(specs, start=1):
        t0 = time.perf_counter()
        im = _photo_like(size, seed)
        path = out / f"{name}.{'jpg' if fmt == 'jpeg' else 'heic'}"
        if fmt == "jpeg":
            im.save(path, format="JPEG", quality=90, exif=exif_bytes)
        else:
            im.save(path, format="HEIF", quality=90, exif=exif_bytes)
        w, h = size
        produced = images.pair_output_sizes([(w, h)], w / h)
        # pair_output_sizes tops the standard widths with min(source, 1600), so a source
        # wider than 1600 px yields 1600 twice. The rendition set is the distinct
        # sizes (9 files); the parent prints the raw list so the duplicate stays visible.
        sizes = list(dict.fromkeys(produced))
        facts.append(
            {
                "name": name,
                "path": str(path),
                "width": w,
                "height": h,
                "bytes": path.stat().st_size,
                "sizes": sizes,
                "pair_output_sizes": produced,
                "seconds": time.perf_counter() - t0,
            }
        )
        del im
    # A tiny JPEG to measure vipsthumbnail's fixed start-up cost.
    Image.new("RGB", (64, 48), (128, 100, 90)).save(out / "tiny.jpg", quality=90)
    print(
        json.dumps(
            {
                "inputs": facts,
                "tiny": str(out / "tiny.jpg"),
                "encode_options": images.ENCODE_OPTIONS,
                "formats": list(images.RENDITION_FORMATS),
            }
        )
    )


def child_main(argv: list[str]) -> int:
    """``--child project|profile INPUT WxH SIZES FORMATS`` or ``--child inputs DIR [quick]``.

    A positional protocol rather than argparse, which would add ~1.6 MB to every child.
    """
    kind = argv[0]
    if kind == "inputs":
        child_make_inputs(argv[1], quick=argv[2:] == ["quick"])
        return 0
    path, upright, sizes, formats = argv[1:5]
    w, h = (int(v) for v in upright.split("x"))
    fn = {"project": child_project, "profile": child_profile}[kind]
    fn(path, (w, h), _parse_sizes(sizes), formats.split(","))
    return 0


# ---------------------------------------------------------------------------------------
# Parent side: spawn, time and compare. Standard library only (see module docstring).


@functools.cache
def vipsthumbnail() -> str:
    import shutil

    return shutil.which("vipsthumbnail") or "/usr/bin/vipsthumbnail"


def child_cmd(kind: str, inp: dict[str, Any], sizes: list[Size], formats: list[str]) -> list[str]:
    return [
        sys.executable,
        str(SCRIPT),
        "--child",
        kind,
        inp["path"],
        f"{inp['width']}x{inp['height']}",
        ",".join(f"{w}x{h}" for w, h in sizes),
        ",".join(formats),
    ]


@dataclass
class Run:
    wall_s: float  # wall clock of the whole child process, spawn to reap
    maxrss_kb: int  # the child's RSS high-water mark (ru_maxrss of wait4)
    stdout: str


def run_child(cmd: Sequence[str]) -> Run:
    """Run ``cmd`` to completion; return its wall time and peak RSS.

    ``os.wait4`` gives the rusage of exactly this child, unlike RUSAGE_CHILDREN, whose
    ru_maxrss is the maximum over every child ever reaped and so cannot be diffed.
    """
    import subprocess
    import tempfile

    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        stdout = proc.stdout.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.stdout.close()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(
                f"{' '.join(cmd)} exited {proc.returncode}:\n{err.read().decode()[-3000:]}"
            )
    return Run(wall, usage.ru_maxrss, stdout)


def vips_version() -> tuple[int, int, int]:
    import re
    import subprocess

    out = subprocess.run(
        [vipsthumbnail(), "--vips-version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
    if not match:
        raise RuntimeError(f"cannot parse vips version from {out!r}")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def avif_effort(pillow_speed: int) -> int:
    """Map Pillow's AVIF ``speed`` to vips heifsave ``effort``.

    Pillow passes ``speed`` (0 slowest .. 10 fastest) to libavif, which hands it to libaom
    as ``cpu-used`` (clamped to 0..9 for good-quality/all-intra usage). libvips passes
    ``9 - effort`` to libheif's aom plugin as ``speed``, which is also ``cpu-used``
    (confirmed here: effort 9 is ~40x slower than effort 1 on a 2 MP image). So
    ``effort = 9 - speed`` asks libaom for the same cpu-used: speed 8 -> effort 1.
    The two still differ in libaom build (Pillow's wheel bundles its own, newer libaom;
    vips uses Debian's) and in how each wrapper turns quality into quantizers, which is why
    the output sizes are reported next to the times.
    """
    return max(0, min(9, 9 - pillow_speed))


def vips_save_options(fmt: str, opts: dict[str, Any], version: tuple[int, int, int]) -> str:
    """The ``[...]`` save options that make vips encode like ENCODE_OPTIONS[fmt]."""
    if fmt == "jpeg":
        parts = [f"Q={opts['quality']}"]
        if opts.get("progressive"):
            parts.append("interlace")  # Pillow's progressive=True
        if opts.get("optimize"):
            parts.append("optimize-coding")
    elif fmt == "webp":
        # Pillow's `method` and vips' `effort` are both libwebp's config.method (0..6).
        parts = [f"Q={opts['quality']}", f"effort={opts.get('method', 4)}"]
    elif fmt == "avif":
        # bitdepth=8: Pillow writes 8-bit AVIF; av1 is what the .avif suffix picks anyway.
        parts = [
            f"Q={opts['quality']}",
            f"effort={avif_effort(opts.get('speed', 6))}",
            "bitdepth=8",
            "compression=av1",
        ]
    else:
        raise ValueError(fmt)
    # The project's output carries no metadata; vips keeps EXIF/XMP/ICC unless told.
    # libvips 8.15 replaced the boolean `strip` with `keep`.
    parts.append("keep=none" if version >= (8, 15, 0) else "strip")
    return ",".join(parts)


@dataclass
class Pair:
    """Paired measurements of one task (input x what) across reps."""

    project_s: list[float] = field(default_factory=list)  # render_crop only
    project_proc_s: list[float] = field(default_factory=list)  # whole child process
    import_s: list[float] = field(default_factory=list)
    vips_s: list[float] = field(default_factory=list)  # sum over invocations
    project_rss_kb: list[int] = field(default_factory=list)
    project_import_rss_kb: list[int] = field(default_factory=list)
    project_hwm_kb: list[int] = field(default_factory=list)
    vips_rss_kb: list[int] = field(default_factory=list)  # max over invocations
    project_bytes: int = 0
    vips_bytes: int = 0

    def ratios(self) -> list[float]:
        return [p / v for p, v in zip(self.project_s, self.vips_s, strict=True)]


class Bench:
    def __init__(self, workdir: Path, setup: dict[str, Any], version: tuple[int, int, int]):
        self.workdir = workdir
        self.outdir = workdir / "out"
        self.outdir.mkdir()
        self.setup = setup
        self.version = version
        self.options = {
            fmt: vips_save_options(fmt, opts, version)
            for fmt, opts in setup["encode_options"].items()
        }

    def project(self, inp: dict[str, Any], sizes: list[Size], formats: list[str]) -> Any:
        run = run_child(child_cmd("project", inp, sizes, formats))
        return run, json.loads(run.stdout)

    def vips(self, inp: dict[str, Any], sizes: list[Size], formats: list[str]) -> list[Run]:
        """One vipsthumbnail process per output: it makes one size per invocation."""
        runs = []
        for width, _ in sizes:
            for fmt in formats:
                out = self.outdir / f"{inp['name']}-{width}.{VIPS_EXT[fmt]}"
                cmd = [
                    vipsthumbnail(),
                    inp["path"],
                    "--size",
                    f"{width}x",  # width only: the height follows the aspect, as ours
                    "-o",
                    f"{out}[{self.options[fmt]}]",
                ]
                run = run_child(cmd)
                run.stdout = str(out.stat().st_size)  # keep the size; the file is reused
                runs.append(run)
        return runs

    def measure(
        self, pair: Pair, inp: dict[str, Any], sizes: list[Size], formats: list[str], rep: int
    ) -> None:
        def do_project() -> None:
            run, data = self.project(inp, sizes, formats)
            pair.project_s.append(data["render_s"])
            pair.project_proc_s.append(run.wall_s)
            pair.import_s.append(data["import_s"])
            pair.project_rss_kb.append(run.maxrss_kb)
            pair.project_import_rss_kb.append(data["rss_after_import_kb"])
            pair.project_hwm_kb.append(data["hwm_kb"])
            pair.project_bytes = sum(o[3] for o in data["outputs"])

        def do_vips() -> None:
            runs = self.vips(inp, sizes, formats)
            pair.vips_s.append(sum(r.wall_s for r in runs))
            pair.vips_rss_kb.append(max(r.maxrss_kb for r in runs))
            pair.vips_bytes = sum(int(r.stdout) for r in runs)

        # Alternate which side goes first, so neither always gets the cooler CPU/caches.
        for step in (do_project, do_vips) if rep % 2 == 0 else (do_vips, do_project):
            step()


def _sizes(inp: dict[str, Any]) -> list[Size]:
    """The input's distinct rendition sizes (JSON gives lists; the project wants tuples)."""
    return [(w, h) for w, h in inp["sizes"]]


def _median(values: Sequence[float]) -> float:
    import statistics

    return statistics.median(values) if values else float("nan")


def _mb(kb: float) -> float:
    return kb / 1024


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:  # hidden sub-command, before any parent-only import
        return child_main(argv[1:])

    import argparse
    import shutil
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions (5)")
    parser.add_argument("--quick", action="store_true", help="1 rep, 12 MP JPEG only")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir of inputs")
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile render_crop on the largest JPEG"
    )
    args = parser.parse_args(argv)

    reps = 1 if args.quick else args.reps
    if reps < 1:
        parser.error("--reps must be at least 1")
    if not Path(vipsthumbnail()).exists():
        parser.error(f"vipsthumbnail not found ({vipsthumbnail()}); apt-get install libvips-tools")
    version = vips_version()

    # Inputs live in the system temp dir, never in the repository.
    workdir = Path(tempfile.mkdtemp(prefix="bench-images-"))
    assert ROOT not in workdir.parents, workdir
    try:
        return _bench(args, reps, version, workdir)
    finally:
        if args.keep:
            print(f"\nInputs and vips outputs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _bench(args: Any, reps: int, version: tuple[int, int, int], workdir: Path) -> int:
    print(
        f"Python {sys.version.split()[0]}, vipsthumbnail {'.'.join(map(str, version))}, "
        f"{os.cpu_count()} CPUs, reps={reps}, temp dir {workdir}"
    )
    print("Generating inputs ...", flush=True)
    cmd = [sys.executable, str(SCRIPT), "--child", "inputs", str(workdir)]
    gen = run_child(cmd + (["quick"] if args.quick else []))
    setup = json.loads(gen.stdout)
    inputs: list[dict[str, Any]] = setup["inputs"]
    formats: list[str] = setup["formats"]
    for inp in inputs:
        print(
            f"  {inp['name']}: {inp['width']}x{inp['height']}, "
            f"{inp['bytes'] / 1e6:.1f} MB, made in {inp['seconds']:.1f} s"
        )
        if len(inp["pair_output_sizes"]) != len(inp["sizes"]):
            print(
                f"  NOTE: pair_output_sizes returned {inp['pair_output_sizes']} (a duplicate);"
                " benchmarking the distinct sizes (production renders and stores it twice)."
            )
    bench = Bench(workdir, setup, version)
    print("vips save options: " + "; ".join(f"{k}=[{v}]" for k, v in bench.options.items()))

    # Tasks per input: the full set, then each single JPEG rendition.
    tasks: list[tuple[str, str, list[Size], list[str]]] = []
    for inp in inputs:
        sizes = _sizes(inp)
        tasks.append((inp["name"], f"full set ({len(sizes) * len(formats)})", sizes, formats))
        for size in sizes:
            tasks.append((inp["name"], f"jpeg {size[0]}", [size], ["jpeg"]))
    by_name = {inp["name"]: inp for inp in inputs}
    pairs = {(name, what): Pair() for name, what, _, _ in tasks}

    # One unrecorded warm-up of each side per input: page cache, shared-library loading.
    print("Warm-up ...", flush=True)
    for inp in inputs:
        sizes = _sizes(inp)
        bench.project(inp, sizes, formats)
        bench.vips(inp, sizes, formats)

    for rep in range(reps):
        t0 = time.perf_counter()
        for name, what, sizes, fmts in tasks:
            bench.measure(pairs[name, what], by_name[name], sizes, fmts, rep)
        print(f"rep {rep + 1}/{reps} done in {time.perf_counter() - t0:.1f} s", flush=True)

    # vipsthumbnail's fixed cost per invocation (exec, library init, tiny load/save): it is
    # inside every vips figure above, while the project's render_s excludes start-up.
    tiny_cmd = [vipsthumbnail(), setup["tiny"], "--size", "32x", "-o", f"{workdir}/tiny-out.jpg"]
    startup = _median([run_child(tiny_cmd).wall_s for _ in range(7)])

    failed = _report(tasks, pairs, startup, reps)

    if args.profile:
        big = max(inputs, key=lambda i: i["width"] * i["height"] if "jpeg" in i["name"] else 0)
        print(f"\ncProfile of render_crop, full set, {big['name']} (sorted by own time):")
        sizes = _sizes(big)
        cmd = child_cmd("profile", big, sizes, formats)
        print(run_child(cmd).stdout)

    if failed:
        print(f"\n{len(failed)} target(s) missed: {', '.join(failed)}")
    return 1 if (failed and args.strict) else 0


def _report(
    tasks: list[tuple[str, str, list[Size], list[str]]],
    pairs: dict[tuple[str, str], Pair],
    vips_startup_s: float,
    reps: int,
) -> list[str]:
    failed: list[str] = []
    print(
        "\nTimes: medians over reps. project s = render_crop only, in a fresh process. vips s ="
        " wall clock\nof the vipsthumbnail processes (one per output, start-up included). "
        "ratio = median of the\nper-rep project/vips ratios (the verdict). For context: "
        "'proc ratio' uses the project child's\nwhole process (interpreter start, imports, "
        "exit) instead; 'net ratio' takes vips' measured\nstart-up cost off each vips "
        "invocation. 'out KB' = total encoded bytes of one run."
    )
    head = (
        f"{'input':<10} {'what':<13} {'project s':>9} {'vips s':>8} {'ratio':>7} "
        f"{'target':>7} {'result':<6} {'proc ratio':>10} {'net ratio':>9} "
        f"{'out KB proj/vips':>17}"
    )
    print(head)
    print("-" * len(head))
    for name, what, sizes, fmts in tasks:
        p = pairs[name, what]
        ratio = _median(p.ratios())
        target = TARGET_FULL_SET if what.startswith("full") else TARGET_SINGLE_JPEG
        ok = ratio <= target
        if not ok:
            failed.append(f"{name} {what}")
        proc_ratio = _median([a / b for a, b in zip(p.project_proc_s, p.vips_s, strict=True)])
        startup = vips_startup_s * len(sizes) * len(fmts)
        net_ratio = _median(
            [a / max(1e-6, b - startup) for a, b in zip(p.project_s, p.vips_s, strict=True)]
        )
        print(
            f"{name:<10} {what:<13} {_median(p.project_s):>9.3f} {_median(p.vips_s):>8.3f} "
            f"{ratio:>6.2f}x {'<=' + format(target, '.1f') + 'x':>7} "
            f"{'PASS' if ok else 'FAIL':<6} {proc_ratio:>9.2f}x {net_ratio:>8.2f}x "
            f"{p.project_bytes / 1024:>8.0f}/{p.vips_bytes / 1024:<8.0f}"
        )

    print(
        "\nPeak memory of the full-set child (max over reps, MB). 'after imports' is the "
        "child's RSS\nonce Python, Pillow and pillow-heif are loaded, before render_crop; "
        "it is part of the peak."
    )
    head = (
        f"{'input':<10} {'project peak':>12} {'after imports':>13} {'own VmHWM':>9} "
        f"{'vips peak':>9} {'target':>8} {'result':<6}"
    )
    print(head)
    print("-" * len(head))
    for name, what, _, _ in tasks:
        if not what.startswith("full"):
            continue
        p = pairs[name, what]
        peak = _mb(max(p.project_rss_kb))
        if name == MEMORY_INPUT:
            ok = peak <= TARGET_PEAK_MB
            target, result = f"<={TARGET_PEAK_MB:.0f}", "PASS" if ok else "FAIL"
            if not ok:
                failed.append(f"{name} peak memory")
        else:
            target, result = "-", "-"
        print(
            f"{name:<10} {peak:>12.1f} {_mb(max(p.project_import_rss_kb)):>13.1f} "
            f"{_mb(max(p.project_hwm_kb)):>9.1f} {_mb(max(p.vips_rss_kb)):>9.1f} "
            f"{target:>8} {result:<6}"
        )

    print(
        "\nOverheads (medians, s). The project's are outside 'project s' (a long-lived worker "
        "pays them\nonce); vips' start-up is inside 'vips s' (paid on every invocation)."
    )
    head = (
        f"{'input':<10} {'what':<13} {'child imports':>13} {'python start+exit':>17} "
        f"{'vips start-up x runs':>20}"
    )
    print(head)
    print("-" * len(head))
    for name, what, sizes, fmts in tasks:
        p = pairs[name, what]
        n = len(sizes) * len(fmts)
        # What the child spends outside imports and render_crop: interpreter start and exit.
        rest = _median(
            [a - b - c for a, b, c in zip(p.project_proc_s, p.project_s, p.import_s, strict=True)]
        )
        print(
            f"{name:<10} {what:<13} {_median(p.import_s):>13.3f} {rest:>17.3f} "
            f"{vips_startup_s * n:>12.3f} (x {n})"
        )
    print(
        f"\nvipsthumbnail start-up (64x48 JPEG in, 32 px JPEG out): {vips_startup_s * 1000:.1f}"
        f" ms per invocation. Parent RSS {_mb(_self_maxrss_kb()):.1f} MB (a floor on "
        "every child's ru_maxrss)."
    )
    if reps < 5:
        print(f"Only {reps} rep(s): medians are indicative, use --reps 5 or more.")
    return failed


def _self_maxrss_kb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    sys.exit(main())
