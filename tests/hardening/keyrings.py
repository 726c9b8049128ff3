"""Keyring backends for loom subprocesses, named in PYTHON_KEYRING_BACKEND (e.g. "tests.hardening.keyrings.LockedKeyring").

The stand-ins in tests/fixtures/keyring.py keep entries in memory, which a subprocess
loses when it exits. `FileWindowsKeyring` keeps them in a JSON file, so several loom
runs share one keyring, and loom takes it for the Windows Credential Manager.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.errors import KeyringLocked, PasswordDeleteError

from tests.fixtures.keyring import MemoryKeyring

ENTRIES_VARIABLE = "LOOM_TEST_KEYRING_FILE"


class LockedKeyring(MemoryKeyring):
    """A keyring whose collection is locked and stays locked (the user dismissed the unlock dialog)."""

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("the collection is locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("the collection is locked")


class FileWindowsKeyring(MemoryKeyring):
    """A keyring loom takes for Windows Credential Manager, keeping its entries in the file named by LOOM_TEST_KEYRING_FILE."""

    def _path(self) -> Path:
        return Path(os.environ[ENTRIES_VARIABLE])

    def _load(self) -> dict[str, str]:
        try:
            return json.loads(self._path().read_text())
        except FileNotFoundError:
            return {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        entries = self._load()
        entries[f"{service}/{username}"] = password
        self._path().write_text(json.dumps(entries))

    def delete_password(self, service: str, username: str) -> None:
        entries = self._load()
        if entries.pop(f"{service}/{username}", None) is None:
            raise PasswordDeleteError("no such entry")
        self._path().write_text(json.dumps(entries))


FileWindowsKeyring.__module__ = "keyring.backends.Windows"
