"""Start the app for a benchmark, and the helpers the scripts share.

An environment isolated in a temporary directory, ``manage.py``, gunicorn on a free
loopback port (stopped by its process group, in bounded time), ``wrk`` for HTTP load.
Each script runs as ``python bench/<name>.py``, so this folder is on ``sys.path``.
"""

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
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the Django project root (holds manage.py)
HOST = "127.0.0.1"  # loopback only, never a routable address
PORTS = range(18500, 19000)
HTML_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# gunicorn's access log: worker pid, request, status, bytes, server-side microseconds.
ACCESS_FORMAT = '%(p)s "%(r)s" %(s)s %(B)s %(D)sus'

# Variables that would point a benchmark at shared infrastructure or change what it measures.
DROPPED_PREFIXES = ("AWS_", "DJANGO_", "DATABASE_", "EMAIL_", "PHOTO_", "GALLERY_", "PUBLIC_")
DROPPED = {"REDIS_URL", "MEDIA_ROOT", "STATIC_ROOT", "CACHE_DIR", "SERVE_PUBLIC_MEDIA"}
QUIET = {"cwd": ROOT, "stdin": subprocess.DEVNULL}


def environment(tmp: Path, database_url: str = "", **extra: str) -> dict[str, str]:
    """The project's settings pointed into ``tmp``: database (unless given), media, cache,
    static files; debug off, plain http on loopback (no redirect to https)."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED}
    env = {k: v for k, v in env.items() if not k.startswith(DROPPED_PREFIXES)}
    (tmp / "tmp").mkdir(parents=True, exist_ok=True)  # uploads spooled to disk go there too
    env |= {"DATABASE_URL": database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"}
    env |= {"MEDIA_ROOT": f"{tmp}/media", "CACHE_DIR": f"{tmp}/cache", "TMPDIR": f"{tmp}/tmp"}
    env |= {"STATIC_ROOT": f"{tmp}/staticfiles", "DJANGO_SETTINGS_MODULE": "clinic.settings"}
    env |= {"DJANGO_SECRET_KEY": "bench-only", "DJANGO_DEBUG": "off", "DJANGO_HTTPS": "off"}
    env |= {"DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost", "LOG_LEVEL": "WARNING"}
    # No __pycache__ written into the repository by the children.
    return env | {"PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"} | extra


def manage(env: dict[str, str], *args: str, timeout: float = 900) -> str:
    """Run one management command and return its stdout; on failure show it and stop."""
    t0, label = time.monotonic(), args[0] if args[0] == "shell" else " ".join(args)
    cmd = [sys.executable, str(ROOT / "manage.py"), *args]
    try:
        done = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=timeout, **QUIET
        )
    except subprocess.TimeoutExpired:
        raise SystemExit(f"manage.py {label} took over {timeout:.0f} s") from None
    print(f"  manage.py {label}: {time.monotonic() - t0:.1f} s", flush=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"manage.py {label} failed ({done.returncode})")
    return done.stdout


def setup(env: dict[str, str], count: int = 30) -> None:
    """The demo data every server benchmark starts from."""
    manage(env, "migrate", "--noinput")
    # The demo login with its known password is made only with debug on.
    manage({**env, "DJANGO_DEBUG": "on"}, "seed_demo", "--count", str(count))
    manage(env, "collectstatic", "--noinput")


def shell_json(env: dict[str, str], code: str) -> object:
    """Run Python in the project (``manage.py shell -c``); its last line of output is JSON."""
    return json.loads(manage(env, "shell", "-c", code).strip().splitlines()[-1])


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as sock:
            # As gunicorn's listener: a port left in TIME_WAIT by an earlier run is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {HOST}:{PORTS.start}-{PORTS.stop - 1}")


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    tmp: Path  # holds gunicorn.log (its error log) and access.log

    base = property(lambda self: f"http://{HOST}:{self.port}")
    log = property(lambda self: self.tmp / "gunicorn.log")

    def workers(self) -> list[int]:
        return worker_pids(self.proc.pid)


@contextmanager
def gunicorn(
    env: dict[str, str], tmp: Path, *options: str, workers: int = 2, stop_timeout: float = 30
) -> Iterator[Server]:
    """gunicorn for the duration of the block, ready when every worker has answered.

    The master leads its own session (process group), so stopping it by that id reaches its
    workers and nothing else. Logs go to files: a pipe nobody drains blocks the workers.
    """
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "clinic.wsgi:application", "--bind", f"{HOST}:{port}"]
    cmd += ["--workers", str(workers), "--error-logfile", str(tmp / "gunicorn.log")]
    cmd += ["--access-logfile", str(tmp / "access.log"), "--access-logformat", ACCESS_FORMAT]
    cmd += ["--no-control-socket", *options]  # its default path under $HOME is shared
    with (tmp / "gunicorn.out").open("ab") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=out, start_new_session=True, **QUIET
        )
    server = Server(proc, port, tmp)
    try:
        wait_ready(server, workers)
        yield server
    finally:
        stop_group(proc, stop_timeout)


def wait_ready(server: Server, workers: int, timeout: float = 90) -> None:
    """Wait until every worker has answered /healthz, not merely the first one: workers
    import Django after the fork, and one still importing when a load opens its
    connections would get none of them. The access log's pid field says who answered."""
    deadline, access_log = time.monotonic() + timeout, server.tmp / "access.log"
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise SystemExit(f"gunicorn exited ({server.proc.returncode}):\n{tail(server.log)}")
        pids = server.workers()
        if len(pids) >= workers:
            conns = [http.client.HTTPConnection(HOST, server.port, timeout=5) for _ in range(8)]
            for send in (lambda c: c.request("GET", "/healthz"), lambda c: c.getresponse().read()):
                for conn in conns:  # sent together, so that several workers accept one
                    with contextlib.suppress(OSError, http.client.HTTPException):
                        send(conn)
            text = access_log.read_text() if access_log.exists() else ""
            if all(f"<{pid}>" in text for pid in pids):
                return
        time.sleep(0.2)
    raise SystemExit(f"gunicorn not ready after {timeout:.0f} s:\n{tail(server.log)}")


def stop_group(proc: subprocess.Popen, timeout: float = 15) -> None:
    """Stop a process started in its own group, and whatever it left behind in it."""

    def signal_group(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    if proc.poll() is None:
        signal_group(signal.SIGTERM)  # graceful: gunicorn's master stops its workers
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            signal_group(signal.SIGKILL)
            proc.wait()
    signal_group(signal.SIGKILL)  # a child that outlived its leader is still in the group


def get(port: int, path: str, accept: str = HTML_ACCEPT) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("GET", path, headers={"Accept": accept})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def worker_pids(master: int) -> list[int]:
    """gunicorn's workers: the master's children, from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                pids.append(int(stat.parent.name))
    return sorted(pids)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads (a gthread worker serves in threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------
# wrk


@dataclass
class Load:
    """One wrk run: counts, bytes, its CPU, and its latencies as a histogram {seconds:
    weight} of its 1,000 permilles, each weighing a thousandth of the requests, so that
    the runs of several wrk processes pool into one distribution."""

    seconds: float
    requests: int = 0
    not_200: int = 0
    socket_errors: Counter = field(default_factory=Counter)
    hits: int = 0  # answers with X-Cache: hit
    body: int = 0  # bodies only, as sent (compressed when the server compressed)
    client_cpu: float = 0.0  # CPU seconds of wrk
    hist: Counter = field(default_factory=Counter)

    @property
    def rps(self) -> float:
        return (self.requests - self.not_200) / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.not_200 + sum(self.socket_errors.values())

    def error_text(self) -> str:
        parts = [f"{k} x{v}" for k, v in self.socket_errors.items() if v]
        return ", ".join(parts + ([f"non-200 x{self.not_200}"] if self.not_200 else [])) or "0"

    def __add__(self, other: Load) -> Load:
        """Two loads run at the same time: counts add up, the window is the longer one."""
        sums = [getattr(self, f.name) + getattr(other, f.name) for f in fields(self)[1:]]
        return Load(max(self.seconds, other.seconds), *sums)


def require_wrk() -> str:
    """wrk's path; without it, an HTTP benchmark says so and stops before any setup."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk); no HTTP load run")
    return wrk


def wrk_start(
    url: str, seconds: int, conns: int, bust: str = "", **headers: str
) -> subprocess.Popen:
    """wrk, one thread, ``conns`` closed-loop keep-alive connections, a browser's Accept
    unless ``headers`` say otherwise; with ``bust``, every request misses the page cache."""
    cmd = [require_wrk(), "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "30s"]
    for name, value in ({"Accept": HTML_ACCEPT} | headers).items():
        cmd += ["-H", f"{name.replace('_', '-')}: {value}"]
    cmd += ["-s", str(Path(__file__).parent / "wrk.lua"), url, "--", bust]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wrk_wait(proc: subprocess.Popen) -> Load:
    """The JSON line wrk.lua's done() prints, and wrk's own CPU from wait4."""
    out = proc.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    line = next((x for x in out.splitlines() if x.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({proc.returncode}):\n{out[-2000:]}")
    data = json.loads(line)
    hist: Counter = Counter()
    for us in data.pop("permilles"):
        hist[us / 1e6] += data["requests"] / 1000
    data["socket_errors"] = Counter(data["socket_errors"])
    return Load(**data, client_cpu=usage.ru_utime + usage.ru_stime, hist=hist)


def wrk(url: str, seconds: int, conns: int, bust: str = "") -> Load:
    return wrk_wait(wrk_start(url, seconds, conns, bust))


def quantile(hist: Counter, q: float) -> float:
    """Nearest-rank quantile of a histogram {value: weight} (p99 of 1,000: the 990th)."""
    total = sum(hist.values())
    if not total:
        return float("nan")
    rank, seen = q * total, 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= rank:
            return value
    return max(hist)


# ---------------------------------------------------------------------------------------
# Output and signals


def print_table(rows: list[list[str]], header: list[str], indent: str = "") -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(indent + line.format(*header))
    print(indent + "  ".join("-" * w for w in widths))
    for row in rows:
        print(indent + line.format(*row))


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def on_sigterm() -> None:
    """SIGTERM takes the same path as Ctrl-C, so the finally blocks stop what was started."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
