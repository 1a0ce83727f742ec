"""Start the app for a benchmark, and the helpers the scripts share (see README.md)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent  # the Django project root (holds manage.py)
HOST = "127.0.0.1"  # loopback only
PORTS = range(18500, 19000)
HTML_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# gunicorn's access log: worker pid, request, status, bytes, server-side microseconds.
ACCESS_FORMAT = '%(p)s "%(r)s" %(s)s %(B)s %(D)sus'
DEMO_USER = "demo"  # the photographer seed_demo makes with debug on
DEMO_PASSWORD = "demo-gallery-2026"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Root in a container (no sandbox), no GPU, no background calls adding bytes or load.
CHROMIUM_ARGS = (
    "--no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --disable-sync "
    "--disable-background-networking --disable-component-update --disable-quic"
).split()
# Variables that would point a benchmark at shared infrastructure or change what it measures.
DROPPED_PREFIXES = ("AWS_", "DJANGO_", "DATABASE_", "EMAIL_", "PHOTO_", "GALLERY_", "PUBLIC_")
DROPPED = {"REDIS_URL", "MEDIA_ROOT", "STATIC_ROOT", "CACHE_DIR", "SERVE_PUBLIC_MEDIA"}


def environment(tmp: Path, database_url: str = "", **extra: str) -> dict[str, str]:
    """The project's settings pointed into ``tmp``; debug off, plain http on loopback."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED}
    env = {k: v for k, v in env.items() if not k.startswith(DROPPED_PREFIXES)}
    (tmp / "tmp").mkdir(parents=True, exist_ok=True)  # uploads spooled to disk go there too
    env["DATABASE_URL"] = database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    env |= {"MEDIA_ROOT": f"{tmp}/media", "CACHE_DIR": f"{tmp}/cache", "TMPDIR": f"{tmp}/tmp"}
    env |= {"STATIC_ROOT": f"{tmp}/staticfiles", "DJANGO_SETTINGS_MODULE": "clinic.settings"}
    env |= {"DJANGO_SECRET_KEY": "bench-only", "DJANGO_DEBUG": "off", "DJANGO_HTTPS": "off"}
    env |= {"DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost", "LOG_LEVEL": "WARNING"}
    # PYTHONDONTWRITEBYTECODE: no __pycache__ written into the repository.
    return env | {"PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"} | extra


def manage(env: dict[str, str], *args: str, timeout: float = 900) -> str:
    """Run one management command and return its stdout; on failure show it and stop."""
    label = "shell" if args[0] == "shell" else " ".join(args)
    cmd = [sys.executable, str(ROOT / "manage.py"), *args]
    t0 = time.monotonic()
    try:
        done = subprocess.run(
            cmd, env=env, cwd=ROOT, input="", capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise SystemExit(f"manage.py {label} took over {timeout:.0f} s") from None
    print(f"  manage.py {label}: {time.monotonic() - t0:.1f} s", flush=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"manage.py {label} failed ({done.returncode})")
    return done.stdout


def setup(env: dict[str, str], count: int = 30) -> None:
    """The demo data every server benchmark starts from (the demo login needs debug on)."""
    manage(env, "migrate", "--noinput")
    manage({**env, "DJANGO_DEBUG": "on"}, "seed_demo", "--count", str(count))
    manage(env, "collectstatic", "--noinput")


@contextmanager
def scratch(
    prefix: str, count: int, database_url: str = "", keep: tuple[str, ...] = (), **extra: str
) -> Iterator[tuple[dict[str, str], Path]]:
    """A temporary directory holding the app's environment, migrated and seeded; removed at
    the end but for the folders in ``keep``. SIGTERM unwinds as Ctrl-C does."""
    on_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    env = environment(tmp, database_url, **extra)
    print(f"Work dir {tmp}; database {env['DATABASE_URL'].split('@')[-1]}")
    print(f"Setup ({os.cpu_count()} CPUs, load average {loadavg()}):", flush=True)
    try:
        setup(env, count)
        yield env, tmp
    finally:
        for path in tmp.iterdir() if keep else [tmp]:
            if path.is_dir() and path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)
        (tmp / "bench.sqlite3").unlink(missing_ok=True)


def shell_json(env: dict[str, str], code: str) -> Any:
    """Run Python in the project (``manage.py shell -c``); its last line of output is JSON."""
    return json.loads(manage(env, "shell", "-c", code).strip().splitlines()[-1])


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as sock:
            # As gunicorn's listener: a port left in TIME_WAIT by an earlier run is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with contextlib.suppress(OSError):
                sock.bind((HOST, port))
                return port
    raise SystemExit(f"no free port in {HOST}:{PORTS.start}-{PORTS.stop - 1}")


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    tmp: Path  # holds gunicorn.log (its error log) and access.log

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log(self) -> Path:
        return self.tmp / "gunicorn.log"

    def workers(self) -> list[int]:
        """gunicorn's workers: the master's children."""
        master = str(self.proc.pid)
        return sorted(
            int(p.name) for p in Path("/proc").glob("[0-9]*") if stat(p.name)[1:2] == [master]
        )


@contextmanager
def gunicorn(
    env: dict[str, str], tmp: Path, *options: str, workers: int = 2, stop_timeout: float = 30
) -> Iterator[Server]:
    """gunicorn for the block, in its own process group; logs go to files, since a pipe
    nobody drains blocks the workers."""
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "clinic.wsgi:application", "--bind", f"{HOST}:{port}"]
    cmd += ["--workers", str(workers), "--access-logformat", ACCESS_FORMAT]
    cmd += ["--error-logfile", str(tmp / "gunicorn.log")]
    cmd += ["--access-logfile", str(tmp / "access.log")]
    cmd += ["--no-control-socket", *options]  # its default path under $HOME is shared
    with (tmp / "gunicorn.out").open("ab") as out:
        io = {"stdin": subprocess.DEVNULL, "stdout": out, "stderr": out}
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True, **io)
    server = Server(proc, port, tmp)
    try:
        wait_ready(server, workers)
        yield server
    finally:
        stop_group(proc, stop_timeout)


def wait_ready(server: Server, workers: int, timeout: float = 90) -> None:
    """Until every worker has answered /healthz (the access log's pid says who answered)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise SystemExit(f"gunicorn exited ({server.proc.returncode}):\n{tail(server.log)}")
        pids = server.workers()
        if len(pids) >= workers:
            conns = [http.client.HTTPConnection(HOST, server.port, timeout=5) for _ in range(8)]
            for conn in conns:  # all sent before any answer is read: several workers accept
                with contextlib.suppress(OSError):
                    conn.request("GET", "/healthz")
            for conn in conns:
                with contextlib.suppress(OSError, http.client.HTTPException):
                    conn.getresponse().read()
                conn.close()
            if all(f"<{pid}>" in read(server.tmp / "access.log") for pid in pids):
                return
        time.sleep(0.2)
    raise SystemExit(f"gunicorn not ready after {timeout:.0f} s:\n{tail(server.log)}")


def stop_group(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM to a process's own group, SIGKILL after ``timeout`` and to any leftover."""
    with contextlib.suppress(ProcessLookupError):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # graceful: gunicorn's master stops its workers
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        os.killpg(proc.pid, signal.SIGKILL)  # a child that outlived its leader


def get(port: int, path: str, accept: str = HTML_ACCEPT) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("GET", path, headers={"Accept": accept})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def first_case_path(server: Server) -> str:
    """The path of the newest public case's page, as the JSON API lists it."""
    status, _, body = get(server.port, "/api/cases/", "application/json")
    if status != 200 or not json.loads(body)["results"]:
        raise SystemExit(f"/api/cases/ answered {status} with no case")
    return urlsplit(json.loads(body)["results"][0]["url"]).path


def stat(pid: int | str) -> list[str]:
    """/proc/PID/stat from its third field (state, ppid, ...); [] once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def reap(proc: subprocess.Popen) -> tuple[str, Any]:
    """A child's whole stdout, then its exit (``returncode`` set) and its own rusage."""
    with proc.stdout:  # type: ignore[union-attr]
        out = proc.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return out, usage


@dataclass
class Load:
    """One wrk run; ``hist``: latencies {seconds: weight}, each permille a 1,000th of it."""

    seconds: float
    requests: int = 0
    not_200: int = 0
    socket_errors: Counter = field(default_factory=Counter)
    hits: int = 0  # answers with X-Cache: hit
    body: int = 0  # bodies only, as sent (compressed when the server compressed)
    hist: Counter = field(default_factory=Counter)

    @property
    def rps(self) -> float:
        return (self.requests - self.not_200) / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.not_200 + self.socket_errors.total()

    def error_text(self) -> str:
        parts = [f"{kind} x{n}" for kind, n in self.socket_errors.items() if n]
        parts += [f"non-200 x{self.not_200}"] if self.not_200 else []
        return ", ".join(parts) or "0"

    def __add__(self, other: Load) -> Load:
        """Two loads run at the same time: counts add up, the window is the longer one."""
        names = [f.name for f in fields(self) if f.name != "seconds"]
        sums = {name: getattr(self, name) + getattr(other, name) for name in names}
        return Load(max(self.seconds, other.seconds), **sums)


def require_wrk() -> str:
    """wrk's path; without it, an HTTP benchmark says so and stops before any setup."""
    if wrk := shutil.which("wrk"):
        return wrk
    raise SystemExit("wrk is not installed (Debian: apt-get install wrk); no HTTP load run")


def wrk_start(
    url: str, seconds: int, conns: int, bust: str = "", **headers: str
) -> subprocess.Popen:
    """wrk, one thread, ``conns`` keep-alive connections, a browser's Accept unless ``headers``
    say otherwise; with ``bust``, every request misses the page cache."""
    cmd = [require_wrk(), "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "30s"]
    for name, value in ({"Accept": HTML_ACCEPT} | headers).items():
        cmd += ["-H", f"{name.replace('_', '-')}: {value}"]
    cmd += ["-s", str(Path(__file__).parent / "wrk.lua"), url, "--", bust]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wrk_wait(proc: subprocess.Popen) -> Load:
    """The JSON line wrk.lua's done() prints."""
    out = proc.communicate()[0]
    line = next((x for x in out.splitlines() if x.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({proc.returncode}):\n{out[-2000:]}")
    data = json.loads(line)
    hist = Counter(us / 1e6 for us in data.pop("permilles"))
    hist = Counter({s: n * data["requests"] / 1000 for s, n in hist.items()})
    return Load(**data | {"socket_errors": Counter(data["socket_errors"])}, hist=hist)


def quantile(hist: Counter, q: float) -> float:
    """Nearest-rank quantile of a histogram {value: weight} (p99 of 1,000: the 990th)."""
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= q * sum(hist.values()):
            return value
    return max(hist, default=float("nan"))  # rounding left the last weight short


def camera_photo(size: tuple[int, int], seed: int, after: bool = False, grain: int = 10) -> Any:
    """An RGB image with a photo's statistics, so the encoders do real work: a skin patch, a
    colour card and a ruler (sharp edges, saturated flats), hair-like strokes, sensor noise."""
    import random

    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    from gallery.demo_images import skin_pair

    w, h = size
    rng = random.Random(seed)
    drawn = (1600, 1200) if w > h else (1200, 1600)  # pure Python drawing: drawn small
    im = skin_pair(seed, 3, "acne-scars", size=drawn)[after]
    im = im.resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(im)
    cell = w // 40
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
    # Luma grain of up to +-``grain`` levels, slightly blurred (demosaicing correlates
    # neighbours) and re-stretched, plus up to +-3 levels of independent chroma noise.
    noise = Image.frombytes("L", size, rng.randbytes(w * h)).filter(ImageFilter.GaussianBlur(0.7))
    noise = noise.point(
        [max(0, min(255, (v - 128) * 3 + 128)) * 2 * grain // 255 for v in range(256)]
    )
    im = ImageChops.add(im, Image.merge("RGB", (noise, noise, noise)), offset=-grain)
    chroma = min(3, grain)
    colour_noise = Image.frombytes("RGB", size, rng.randbytes(w * h * 3))
    colour_noise = colour_noise.point([v * 2 * chroma // 255 for v in range(256)] * 3)
    return ImageChops.add(im, colour_noise, offset=-chroma)


def camera_exif(orientation: int = 1, taken: str = "2026:05:01 10:00:00") -> bytes:
    """EXIF as a phone writes it: Make, Model, Orientation, DateTimeOriginal and offset."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "BenchPhone"
    exif[0x0110] = "BP-12"
    exif[0x0112] = orientation
    exif.get_ifd(0x8769).update({0x9003: taken, 0x9011: "+01:00"})
    return exif.tobytes()


def print_table(rows: list[list[str]], header: list[str], indent: str = "") -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(indent + line.format(*header))
    print(indent + "  ".join("-" * w for w in widths))
    for row in rows:
        print(indent + line.format(*row))


def print_verdicts(verdicts: list[tuple[str, str, str, bool | None]], first: str) -> None:
    """The closing table: what was measured against its target; None: no verdict."""
    results = {True: "PASS", False: "FAIL", None: "-"}
    rows = [[*v[:3], results[v[3]]] for v in verdicts]
    print()
    print_table(rows, [first, "measured", "target", "result"])


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def on_sigterm() -> None:
    """SIGTERM takes the same path as Ctrl-C, so the finally blocks stop what was started."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(read(path).splitlines()[-lines:])
