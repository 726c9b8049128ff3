"""Which modules a `loom` invocation imports, read from `sys.modules` as the process exits.

The start-up budget depends on a few heavy packages staying out of the fast
paths, so the tests and the benchmark both check module names rather than
times: names are stable on any machine, times are not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Import cost of each package alone, measured with `python -c "import NAME"`
# (median of 15 runs, minus the 10 ms of a bare interpreter) on the 2-core
# AMD EPYC machine described in docs/benchmarks.md.
HEAVY_MODULES: dict[str, str] = {
    "eth_account": "Ethereum signing, about 210 ms",
    "fastapi": "the sandbox's web framework, about 290 ms",
    "starlette": "FastAPI's base, imported with it",
    "uvicorn": "the sandbox's server, about 90 ms",
    "jwt": "PyJWT, about 85 ms",
    "yaml": "PyYAML, about 20 ms",
    "pydantic": "about 40 ms",
    "pygments": "syntax highlighting, which httpx's command-line client loads with Click; about 35 ms with it",
}

# Heavy modules that must stay out of each fast path. `--version`, and the
# root help once it is cached, print before Typer is imported. pydantic is
# loaded only to check job specs (and by Typer 0.29 for every command, the
# reason loom pins Typer 0.28).
NOT_ON_VERSION = ("eth_account", "fastapi", "starlette", "uvicorn", "jwt", "yaml", "pydantic", "typer", "rich", "httpx")
NOT_ON_CACHED_HELP = NOT_ON_VERSION
NOT_ON_ROOT_HELP = ("eth_account", "fastapi", "starlette", "uvicorn", "jwt", "yaml", "pydantic")
NOT_ON_COMMAND_HELP = ("eth_account", "fastapi", "starlette", "uvicorn", "jwt", "yaml", "pydantic")
NOT_ON_READ_COMMANDS = ("eth_account", "fastapi", "starlette", "uvicorn", "yaml", "pydantic", "pygments")

# Runs loom's entry point as the console script does and writes the names of
# all imported modules to the file named by the first argument when the
# interpreter exits, whatever the exit code.
_SNAPSHOT_PROGRAM = """\
import atexit, json, sys
_target = sys.argv[1]
def _dump():
    with open(_target, "w", encoding="utf-8") as handle:
        json.dump(sorted(sys.modules), handle)
atexit.register(_dump)
sys.argv = ["loom", *sys.argv[2:]]
from loom_cli.__main__ import main
main()
"""


@dataclass
class ImportSnapshot:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    modules: frozenset[str]

    def loaded(self, packages: Iterable[str]) -> list[str]:
        """Return those of `packages` that were imported, as a package or any of its submodules."""
        return [name for name in packages if self.has(name)]

    def has(self, package: str) -> bool:
        prefix = package + "."
        return any(module == package or module.startswith(prefix) for module in self.modules)


def snapshot_imports(
    *args: str,
    env: Mapping[str, str] | None = None,
    python: str = sys.executable,
    timeout: float = 60,
) -> ImportSnapshot:
    """Run `loom ARGS` in a fresh interpreter with stdin closed and record every module it imported."""
    handle, path = tempfile.mkstemp(prefix="loom-modules-", suffix=".json")
    os.close(handle)
    try:
        result = subprocess.run(
            [python, "-c", _SNAPSHOT_PROGRAM, path, *args],
            env=dict(os.environ if env is None else env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        with open(path, encoding="utf-8") as dump:
            text = dump.read()
    finally:
        os.unlink(path)
    if not text:
        raise RuntimeError(f"loom {' '.join(args)} exited before writing its module list:\n{result.stderr}")
    return ImportSnapshot(args, result.returncode, result.stdout, result.stderr, frozenset(json.loads(text)))
