"""A short description of the machine a benchmark ran on, for the results table."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def memory_gib() -> str:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            kib = int(line.split()[1])
            return f"{kib / 1024 / 1024:.1f} GiB"
    return "unknown"


def os_name() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return f"{line.partition('=')[2].strip(chr(34))}, kernel {platform.release()}"
    return platform.platform()


def git_commit(folder: Path) -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip() or "unknown"


def wrk_version() -> str | None:
    if not shutil.which("wrk"):
        return None
    result = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    # wrk prints its version line, then its usage, and exits 1.
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0].split(" Copyright")[0] if text else "wrk"


def load_average() -> str:
    """Return the 1, 5 and 15 minute load averages: timings mean little when other work shares the cores."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def describe_machine(checkout: Path) -> dict[str, str]:
    """Return CPU, core count, memory, OS, Python and loom version as labelled strings."""
    from loom_cli import __version__

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    description = {
        "CPU": cpu_model(),
        "cores": f"{os.cpu_count()} ({usable} usable by this process)",
        "memory": memory_gib(),
        "OS": os_name(),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "loom": f"{__version__} (commit {git_commit(checkout)})",
        "load at start": load_average(),
    }
    wrk = wrk_version()
    if wrk:
        description["wrk"] = wrk
    return description
