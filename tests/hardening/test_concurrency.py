"""Many loom processes writing credentials at once, some killed with SIGKILL mid-write, lose nothing and corrupt nothing.

The writers are small Python processes that use loom's CredentialStore directly, so
dozens of them start in a second; each writes the token of its own profile into the
shared tokens.json (a read-modify-write under the store's file lock).
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loom_cli.credentials import CredentialStore
from loom_cli.paths import Paths

WRITER = """
import sys
from pathlib import Path
from loom_cli.credentials import CredentialStore, StoredToken
from loom_cli.paths import Paths

root, profile, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
store = CredentialStore(Paths(root, root / "data"), mode="file")
# A large value makes each write slow enough to be interrupted part of the way through.
padding = "p" * 50_000
for index in range(count):
    store.set_token(profile, StoredToken(f"{profile}-{index}-{padding}", "http://127.0.0.1:9/v1", "0x0", "2030-01-01T00:00:00Z"))
    print(index, flush=True)
"""


def start_writer(root: Path, profile: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), profile, str(count)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_tokens(root: Path) -> dict:
    return json.loads((root / "data" / "tokens.json").read_text())


def test_parallel_writers_lose_no_profile(tmp_path):
    writers = [start_writer(tmp_path, f"profile-{number}", 2) for number in range(20)]
    for writer in writers:
        _, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr

    tokens = read_tokens(tmp_path)
    assert sorted(tokens) == sorted(f"profile-{number}" for number in range(20))
    for profile, token in tokens.items():
        assert token["token"].startswith(f"{profile}-1-")


@pytest.mark.slow
def test_sigkill_during_writes_leaves_old_or_new_value(tmp_path):
    store = CredentialStore(Paths(tmp_path, tmp_path / "data"), mode="file")
    chooser = random.Random(7)
    deadline = time.monotonic() + 60

    for round_number in range(4):
        profiles = [f"round{round_number}-{number}" for number in range(5)]
        writers = {profile: start_writer(tmp_path, profile, 20) for profile in profiles}
        try:
            # Let every writer get going, then kill most of them at staggered moments.
            for writer in writers.values():
                assert writer.stdout is not None
                assert writer.stdout.readline().strip() == "0"
            killed = chooser.sample(profiles, 4)
            for profile in killed:
                time.sleep(chooser.uniform(0.0, 0.05))
                writers[profile].send_signal(signal.SIGKILL)
            # The one left writes to the end while the others die around it.
            for profile in set(profiles) - set(killed):
                assert writers[profile].wait(timeout=60) == 0
        finally:
            for writer in writers.values():
                if writer.poll() is None:
                    writer.send_signal(signal.SIGKILL)
                writer.wait(timeout=30)
        assert time.monotonic() < deadline

        # Every profile that wrote once is there, with a whole value it wrote, and the file still parses.
        tokens = read_tokens(tmp_path)
        for profile in profiles:
            token = store.get_token(profile)
            assert token is not None
            assert token.token.startswith(f"{profile}-")
            assert token.token.endswith("p" * 1000)
            assert tokens[profile]["token"] == token.token

    assert len(read_tokens(tmp_path)) == 20
    # A killed writer leaves its temporary file at worst, never a lock that blocks the next writer.
    with store.lock("credentials"):
        pass
