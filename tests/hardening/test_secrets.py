"""No secret reaches stdout, stderr, a traceback or a loose file, whatever command runs with -vv.

Every command runs as a user would, with `-vv`, against a real sandbox reached through a
recording pass-through server: it sees each login signature in the requests and each
token in the responses. The outputs are then searched for private keys (with and
without 0x, in either case), passphrases, tokens and signatures. `loom auth token`
prints the token on stdout on purpose, so only its stderr is searched.
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.sandbox import api_login
from tests.hardening.faultserver import FaultServer, forward_to
from tests.helpers import loom_env, run_loom

pytestmark = pytest.mark.slow

PASSPHRASE = "tide-fern-QUARTZ 42 never shown"
OTHER_PASSPHRASE = "a second passphrase, also secret"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
SPEC_YAML = "name: render frames\nimage: ubuntu:22.04\nresources: {cpu: 2, memory: 4Gi}\nreward: {amount: '12.5'}\n"


@dataclass
class Session:
    """Every output of one test's loom runs, and the secrets to look for in them."""

    server: FaultServer
    tmp_path: Path
    outputs: list[tuple[str, str]] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    config_dirs: list[Path] = field(default_factory=list)

    def add_key(self, account: Any) -> None:
        key = bytes(account.key).hex()
        self.secrets.update({key, key.upper(), "0x" + key})

    def loom(self, config: str, *args: str, env: dict[str, str] | None = None, input: str | None = None,
             stdout_is_secret: bool = False) -> subprocess.CompletedProcess[str]:
        config_dir = self.tmp_path / config
        if config_dir not in self.config_dirs:
            self.config_dirs.append(config_dir)
        result = run_loom(
            "--api-url", self.server.url, "-vv", *args,
            env={"LOOM_CONFIG_DIR": str(config_dir), **(env or {})}, input=input,
        )
        command = " ".join(args)
        self.outputs.append((f"{command} (stderr)", result.stderr))
        if not stdout_is_secret:
            self.outputs.append((f"{command} (stdout)", result.stdout))
        return result

    def all_secrets(self) -> set[str]:
        """The collected secrets, plus every token and login signature that crossed the server."""
        found = set(self.secrets)
        for body in self.server.forwarded_bodies:
            found.update(JWT.findall(body.decode("utf-8", errors="replace")))
        for request in self.server.requests_to("POST", "/auth/login"):
            signature = json.loads(request.body)["signature"]
            found.update({signature, signature.removeprefix("0x"), signature.removeprefix("0x")[:64]})
        for token in [item for item in found if JWT.fullmatch(item)]:
            found.add(token.rsplit(".", 1)[1])
        return found

    def check(self, *, expect_token: bool = True) -> None:
        secrets = self.all_secrets()
        if expect_token:
            assert any(JWT.fullmatch(item) for item in secrets), "no token crossed the server"
        for name, text in self.outputs:
            assert "Traceback" not in text, f"{name}:\n{text}"
            assert not JWT.search(text), f"{name} shows a token:\n{text}"
            for secret in secrets:
                assert secret not in text, f"{name} shows a secret:\n{text}"
        self.check_files(secrets)

    def check_files(self, secrets: set[str]) -> None:
        # Tokens are kept in the file store by design; keys, signatures and passphrases never.
        tokens = [item for item in secrets if JWT.fullmatch(item)]
        never_stored = {item for item in secrets if not any(item in token for token in tokens)}
        for root in self.config_dirs:
            if not root.exists():
                continue
            paths = [root, *root.rglob("*")]
            for path in paths:
                mode = stat.S_IMODE(path.lstat().st_mode)
                if path.is_dir():
                    assert mode == 0o700, f"{path} has mode {mode:04o}"
                else:
                    assert mode == 0o600, f"{path} has mode {mode:04o}"
                    content = path.read_text(errors="replace")
                    for secret in never_stored:
                        assert secret not in content, f"{path} contains a secret"


@pytest.fixture
def session(fault_server: FaultServer, sandbox_url: str, tmp_path: Path) -> Session:
    for method in ("GET", "POST"):
        fault_server.on(method, "/", forward_to(sandbox_url))
    result = Session(fault_server, tmp_path)
    result.secrets.update({PASSPHRASE, OTHER_PASSPHRASE})
    return result


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(SPEC_YAML, encoding="utf-8")
    return path


def ok(result: subprocess.CompletedProcess[str], code: int = 0) -> subprocess.CompletedProcess[str]:
    assert result.returncode == code, f"exit {result.returncode}:\n{result.stderr}"
    return result


def test_creator_commands_with_private_key(session: Session, new_account, spec_file):
    creator = new_account()
    session.add_key(creator)
    key_env = {"LOOM_PRIVATE_KEY": "0x" + bytes(creator.key).hex()}

    ok(session.loom("creator", "login", env=key_env))
    ok(session.loom("creator", "whoami"))
    token = ok(session.loom("creator", "auth", "token", stdout_is_secret=True)).stdout.strip()
    assert JWT.fullmatch(token)
    job_id = ok(session.loom("creator", "jobs", "create", str(spec_file), "-q")).stdout.strip()
    other_id = ok(session.loom("creator", "jobs", "create", str(spec_file), "-q", "--idempotency-key", "secrets-test-2")).stdout.strip()
    ok(session.loom("creator", "jobs", "create", str(spec_file), "--dry-run"))
    ok(session.loom("creator", "jobs", "validate", str(spec_file)))
    ok(session.loom("creator", "jobs", "list", "--mine"))
    ok(session.loom("creator", "jobs", "list", "-o", "json"))
    ok(session.loom("creator", "jobs", "status", job_id))
    ok(session.loom("creator", "jobs", "cancel", other_id, "--yes"))
    ok(session.loom("creator", "jobs", "watch", job_id, "--timeout", "0.5", "--interval", "0.2"), code=12)
    ok(session.loom("creator", "jobs", "watch", other_id, "-o", "jsonl"), code=11)
    ok(session.loom("creator", "results", "get", job_id), code=4)
    ok(session.loom("creator", "config", "set", "output", "table"))
    ok(session.loom("creator", "config", "list"))
    ok(session.loom("creator", "config", "get", "api_url"))
    ok(session.loom("creator", "config", "unset", "output"))
    ok(session.loom("creator", "logout"))
    # Without a stored token, the key logs in again by itself (renewal).
    ok(session.loom("creator", "whoami", env=key_env))
    ok(session.loom("creator", "auth", "token", env=key_env, stdout_is_secret=True))

    session.check()


def test_worker_commands_with_stored_wallet(session: Session, new_account, sandbox_url, tmp_path: Path):
    worker, creator = new_account(), new_account()
    session.add_key(worker)
    job_id = _post_job(sandbox_url, creator)
    passphrase_env = {"LOOM_PASSPHRASE": PASSPHRASE}
    passphrase_file = tmp_path / "passphrase.txt"
    passphrase_file.write_text(OTHER_PASSPHRASE + "\n")
    passphrase_file.chmod(0o600)

    ok(session.loom("worker", "wallet", "import", env=passphrase_env, input=bytes(worker.key).hex() + "\n"))
    created = ok(session.loom("worker", "wallet", "new", "--passphrase-file", str(passphrase_file)))
    throwaway = created.stdout.strip()
    ok(session.loom("worker", "wallet", "list"))
    keystore = tmp_path / "backup.json"
    ok(session.loom("worker", "wallet", "export", "--keystore", str(keystore), "--address", worker.address))
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    ok(session.loom("worker", "wallet", "export", "--keystore", "-", "--address", worker.address))
    ok(session.loom("worker", "login", "--address", worker.address, env=passphrase_env))
    ok(session.loom("worker", "jobs", "claim", job_id))
    ok(session.loom("worker", "results", "report", job_id, "--output-json", '{"frames": 24}', "--message", "done"))
    ok(session.loom("worker", "results", "get", job_id, "-o", "json"))
    ok(session.loom("worker", "wallet", "remove", throwaway, "--yes"))
    ok(session.loom("worker", "logout"))
    # Renewal with the stored wallet and LOOM_PASSPHRASE.
    ok(session.loom("worker", "whoami", env=passphrase_env))

    # The exported keystore logs in from another folder, with the passphrase from the variable and from a file.
    ok(session.loom("keystore", "login", "--keystore", str(keystore), env=passphrase_env))
    keystore_file_login = tmp_path / "worker-passphrase.txt"
    keystore_file_login.write_text(PASSPHRASE)
    keystore_file_login.chmod(0o600)
    ok(session.loom("keystore-2", "login", "--keystore", str(keystore), "--passphrase-file", str(keystore_file_login)))

    session.check()


def test_failing_commands_show_no_secret(session: Session, new_account, tmp_path: Path):
    account = new_account()
    session.add_key(account)
    key = bytes(account.key).hex()
    passphrase_env = {"LOOM_PASSPHRASE": PASSPHRASE}
    ok(session.loom("failing", "wallet", "import", env=passphrase_env, input=key + "\n"))

    # Wrong passphrases, in the variable and for a keystore file.
    ok(session.loom("failing", "login", env={"LOOM_PASSPHRASE": OTHER_PASSPHRASE}), code=3)
    keystore = tmp_path / "exported.json"
    ok(session.loom("failing", "wallet", "export", "--keystore", str(keystore)))
    ok(session.loom("failing-2", "login", "--keystore", str(keystore), env={"LOOM_PASSPHRASE": OTHER_PASSPHRASE}), code=3)
    # Keys that are almost right: one digit short, one too many, and one pasted twice.
    for broken in (key[:-1], key + "0", key + key):
        ok(session.loom("failing-3", "login", env={"LOOM_PRIVATE_KEY": broken}), code=2)
        session.secrets.add(broken)
        ok(session.loom("failing-3", "wallet", "import", env=passphrase_env, input=broken + "\n"), code=2)
    # A key where a keystore file is expected.
    key_file = tmp_path / "key.json"
    key_file.write_text(key)
    ok(session.loom("failing-3", "login", "--keystore", str(key_file), env=passphrase_env), code=2)
    # A signer that prints the key instead of a signature.
    signer = tmp_path / "signer.py"
    signer.write_text(f"print({key!r})\n")
    ok(session.loom("failing-3", "login", "--address", account.address, "--signer-command", f"{sys.executable} {signer}"), code=3)

    session.check(expect_token=False)


# A bug (an exception loom does not expect) deep in login: the key, the passphrase and
# the fresh token are all in local variables up the stack when it strikes.
CRASH_IN_LOGIN = """
import sys
import loom_cli.credentials

def broken_store(self, profile, token):
    raise RuntimeError("the credential store broke")

loom_cli.credentials.CredentialStore.set_token = broken_store
sys.argv = ["loom", *sys.argv[1:]]
from loom_cli.__main__ import main
main()
"""


@pytest.mark.parametrize("how", ["private-key", "stored-wallet"])
def test_unexpected_error_traceback_shows_no_secret(session: Session, new_account, how):
    account = new_account()
    session.add_key(account)
    config_dir = session.tmp_path / f"crash-{how}"
    session.config_dirs.append(config_dir)
    env = {"LOOM_CONFIG_DIR": str(config_dir)}
    if how == "private-key":
        env["LOOM_PRIVATE_KEY"] = bytes(account.key).hex()
    else:
        env["LOOM_PASSPHRASE"] = PASSPHRASE
        ok(run_loom("wallet", "import", env=env, input=bytes(account.key).hex() + "\n"))

    result = subprocess.run(
        [sys.executable, "-c", CRASH_IN_LOGIN, "--api-url", session.server.url, "-vv", "login"],
        env=loom_env(env), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )

    # A bug exits 1 with Python's plain traceback, which shows code lines but no local variables.
    assert result.returncode == 1, result.stderr
    assert "Traceback" in result.stderr
    assert "RuntimeError: the credential store broke" in result.stderr
    secrets = session.all_secrets()
    assert any(JWT.fullmatch(item) for item in secrets)
    for secret in secrets:
        assert secret not in result.stderr
        assert secret not in result.stdout
    assert not JWT.search(result.stderr)


def _post_job(sandbox_url: str, creator: Any) -> str:
    import httpx

    token = api_login(sandbox_url, creator)
    spec = {"name": "render frames", "image": "ubuntu:22.04", "resources": {"cpu": 2, "memory": "4Gi"}, "reward": {"amount": "1"}}
    with httpx.Client(timeout=10, trust_env=False) as client:
        response = client.post(f"{sandbox_url}/jobs", json=spec, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text
    return response.json()["id"]
