"""Locations of loom's files: platformdirs folders, or `LOOM_CONFIG_DIR` for all of them.

The help cache (loom_cli/helpcache.py) finds its folder itself, without
importing this module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "loom"

# Folders loom creates are private to the user; files inside them are 0600.
DIR_MODE = 0o700
FILE_MODE = 0o600


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Paths:
        """Resolve the folders, letting `LOOM_CONFIG_DIR` replace both (tests, CI isolation)."""
        override = env.get("LOOM_CONFIG_DIR")
        if override:
            root = Path(override).expanduser()
            return cls(config_dir=root, data_dir=root / "data")

        import platformdirs

        return cls(
            config_dir=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
            data_dir=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        )


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) with mode 0700, tightening it if it already exists."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, DIR_MODE)
    return path


def write_private_file(path: Path, data: bytes) -> None:
    """Write `data` atomically with mode 0600: a temp file in the same folder, fsync, rename.

    A crash at any point leaves either the old content or the new, never a mix.
    """
    ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
