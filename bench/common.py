"""Helpers the benchmark scripts share (each script runs as ``python bench/<name>.py``,
so this folder is on ``sys.path``)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


def print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(line.format(*header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a process started in its own group (gunicorn), and whatever it left behind."""

    def signal_group(sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    if proc.poll() is None:
        signal_group(signal.SIGTERM)  # graceful: the master stops its workers
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            signal_group(signal.SIGKILL)
            proc.wait()
    # A worker that outlived its master would still be in the group.
    signal_group(signal.SIGKILL)


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
