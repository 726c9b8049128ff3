"""The wheel: it ships the completion scripts and man pages, and the package in it runs."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from loom_cli import __version__

ROOT = Path(__file__).resolve().parents[1]

# Where each committed file lands under the environment's prefix once the wheel is installed.
SHARED_DATA = {
    "completions/loom.bash": "share/bash-completion/completions/loom",
    "completions/_loom": "share/zsh/site-functions/_loom",
    "completions/loom.fish": "share/fish/vendor_completions.d/loom.fish",
    **{f"man/{page.name}": f"share/man/man1/{page.name}" for page in sorted((ROOT / "man").glob("*.1"))},
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    (path,) = out.glob("*.whl")
    return path


@pytest.mark.slow
def test_wheel_ships_completions_and_man_pages(wheel: Path):
    data = f"loom_cli-{__version__}.data/data/"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for source, target in SHARED_DATA.items():
            assert data + target in names, f"{target} is missing from {wheel.name}"
            assert archive.read(data + target) == (ROOT / source).read_bytes(), f"{target} differs from {source}"


@pytest.mark.slow
def test_wheel_declares_loom_script(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        entry_points = archive.read(f"loom_cli-{__version__}.dist-info/entry_points.txt").decode()
    assert "loom = loom_cli.__main__:main" in entry_points


@pytest.mark.slow
def test_wheel_package_runs(wheel: Path, tmp_path: Path):
    # Installs only loom's own files (dependencies come from this environment)
    # and runs them, so a module or data file left out of the wheel shows up.
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    for args in (["--version"], ["--help"], ["completion", "bash"]):
        result = subprocess.run([sys.executable, "-m", "loom_cli", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    located = subprocess.run(
        [sys.executable, "-c", "import loom_cli; print(loom_cli.__file__)"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert located.stdout.startswith(str(target)), located.stdout
