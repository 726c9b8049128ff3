"""`loom login`, `whoami`, `auth token` and `logout` as a user runs them: the real CLI against a real sandbox.

Every test uses fresh wallets, its own config folder (from the isolation
fixture) and the file credential store, so tests never share a login.
"""

from __future__ import annotations

import json
import os
import queue
import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from loom_cli.credentials import CredentialStore, StoredToken
from tests.fixtures.keyring import fast_keystore
from tests.fixtures.sandbox import api_login, launch_sandbox
from tests.helpers import loom_env, run_loom

pytestmark = pytest.mark.e2e

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(autouse=True)
def file_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep credentials in files: these tests are about login, not about the OS keyring."""
    monkeypatch.setenv("LOOM_KEYRING_BACKEND", "file")


def key_hex(account: Any) -> str:
    return "0x" + bytes(account.key).hex()


def store() -> CredentialStore:
    return CredentialStore.from_env(os.environ)


def stored_token() -> StoredToken | None:
    return store().get_token("default")


def write_signer_script(folder: Path, account: Any) -> Path:
    """Write an external signer: the nonce on stdin, the hex signature on stdout, the key in a file beside it."""
    key_file = folder / "signer.key"
    key_file.write_text(key_hex(account))
    script = folder / "signer.py"
    script.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        "from eth_account import Account\n"
        "from eth_account.messages import encode_defunct\n"
        f"key = Path({str(key_file)!r}).read_text().strip()\n"
        "nonce = sys.stdin.readline().strip()\n"
        "print('signing on the device', file=sys.stderr)\n"
        "print(Account.sign_message(encode_defunct(text=nonce), key).signature.hex())\n"
    )
    return script


def all_config_text(config_dir: Path) -> str:
    return "".join(path.read_text(errors="replace") for path in config_dir.rglob("*") if path.is_file())


# -- logging in ------------------------------------------------------------------------------


def test_login_with_private_key(sandbox_url: str, new_account: Callable[[], Any], isolated_env: Path):
    account = new_account()

    result = run_loom("--api-url", sandbox_url, "login", env={"LOOM_PRIVATE_KEY": key_hex(account)})

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{account.address}\n"
    assert sandbox_url in result.stderr
    token = stored_token()
    assert token is not None
    assert token.address == account.address
    assert token.api_url == sandbox_url
    assert bytes(account.key).hex() not in all_config_text(isolated_env)
    assert token.token not in result.stdout + result.stderr
    assert f'address = "{account.address}"' in (isolated_env / "config.toml").read_text()


def test_login_json_output(sandbox_url: str, new_account: Callable[[], Any]):
    account = new_account()

    result = run_loom("--api-url", sandbox_url, "login", "-o", "json", env={"LOOM_PRIVATE_KEY": key_hex(account)})

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["address"] == account.address
    assert data["api_url"] == sandbox_url
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", data["expires_at"])
    assert set(data) == {"address", "api_url", "expires_at"}


def test_login_with_keystore_file(sandbox_url: str, new_account: Callable[[], Any], tmp_path: Path):
    account = new_account()
    keystore = tmp_path / "wallet.json"
    keystore.write_text(json.dumps(fast_keystore(bytes(account.key), PASSPHRASE)))
    passphrase_file = tmp_path / "pass.txt"
    passphrase_file.write_text(PASSPHRASE + "\n")
    passphrase_file.chmod(0o600)

    result = run_loom("--api-url", sandbox_url, "login", "--keystore", str(keystore), "--passphrase-file", str(passphrase_file))

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{account.address}\n"
    assert stored_token() is not None


def test_login_with_keystore_wrong_passphrase(sandbox_url: str, new_account: Callable[[], Any], tmp_path: Path):
    account = new_account()
    keystore = tmp_path / "wallet.json"
    keystore.write_text(json.dumps(fast_keystore(bytes(account.key), PASSPHRASE)))

    result = run_loom("--api-url", sandbox_url, "login", "--keystore", str(keystore), env={"LOOM_PASSPHRASE": "wrong"})

    assert result.returncode == 3
    assert "wrong passphrase" in result.stderr
    assert "Traceback" not in result.stderr
    assert stored_token() is None


def test_login_with_signer_command(sandbox_url: str, new_account: Callable[[], Any], tmp_path: Path):
    account = new_account()
    script = write_signer_script(tmp_path, account)

    result = run_loom(
        "--api-url", sandbox_url, "login", "--address", account.address, "--signer-command", f"{sys.executable} {script}",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{account.address}\n"
    assert "signing on the device" in result.stderr
    assert stored_token() is not None


def test_signer_command_for_other_wallet_is_rejected(sandbox_url: str, new_account: Callable[[], Any], tmp_path: Path):
    signing, claimed = new_account(), new_account()
    script = write_signer_script(tmp_path, signing)

    result = run_loom(
        "--api-url", sandbox_url, "login", "--address", claimed.address, "--signer-command", f"{sys.executable} {script}",
    )

    assert result.returncode == 3
    assert f"signed with wallet {signing.address}, not {claimed.address}" in result.stderr
    assert stored_token() is None


def test_signer_command_failure_is_reported(sandbox_url: str, new_account: Callable[[], Any], tmp_path: Path):
    script = tmp_path / "broken.py"
    script.write_text("import sys\nprint('device locked', file=sys.stderr)\nsys.exit(2)\n")

    result = run_loom(
        "--api-url", sandbox_url, "login", "--address", new_account().address, "--signer-command", f"{sys.executable} {script}",
    )

    assert result.returncode == 3
    assert "device locked" in result.stderr
    assert "failed with exit status 2" in result.stderr
    assert stored_token() is None


def test_signer_command_needs_an_address(sandbox_url: str, tmp_path: Path):
    result = run_loom("--api-url", sandbox_url, "login", "--signer-command", "true")

    assert result.returncode == 2
    assert "--signer-command needs the address" in result.stderr
    assert "--address" in result.stderr


class LineReader:
    """Reads a stream line by line in a thread, so a test can wait for a line with a timeout."""

    def __init__(self, stream: Any) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put("")

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match
            if not line:
                raise AssertionError(f"no line matched {pattern!r}; output was:\n{''.join(self.seen)}")


def test_login_manual_with_piped_signature(sandbox_url: str, new_account: Callable[[], Any]):
    account = new_account()
    proc = subprocess.Popen(
        [sys.executable, "-m", "loom_cli", "--api-url", sandbox_url, "login", "--address", account.address, "--manual"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=loom_env(),
    )
    try:
        stderr = LineReader(proc.stderr)
        nonce = stderr.wait_for(r"^  ([A-Za-z0-9]{16,64})$").group(1)
        stderr.wait_for(r"Reading the signature from stdin")
        signature = Account.sign_message(encode_defunct(text=nonce), account.key).signature.hex()
        stdout, _ = proc.communicate(signature + "\n", timeout=60)
    finally:
        proc.kill()
        proc.wait()

    assert proc.returncode == 0, "".join(stderr.seen)
    assert stdout == f"{account.address}\n"
    assert signature.removeprefix("0x") not in "".join(stderr.seen)


def test_login_manual_without_signature_fails(sandbox_url: str, new_account: Callable[[], Any]):
    result = run_loom("--api-url", sandbox_url, "login", "--address", new_account().address, "--manual")

    assert result.returncode == 3
    assert "no signature was given on stdin" in result.stderr


def test_login_with_stored_wallet(sandbox_url: str, new_account: Callable[[], Any]):
    account = new_account()
    store().set_keystore(account.address, fast_keystore(bytes(account.key), PASSPHRASE))

    result = run_loom("--api-url", sandbox_url, "login", env={"LOOM_PASSPHRASE": PASSPHRASE})

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{account.address}\n"


def test_login_without_terminal_or_key_names_the_options(sandbox_url: str, new_account: Callable[[], Any]):
    account = new_account()
    store().set_keystore(account.address, fast_keystore(bytes(account.key), PASSPHRASE))

    result = run_loom("--api-url", sandbox_url, "login")

    assert result.returncode == 3
    assert "LOOM_PASSPHRASE" in result.stderr
    assert "--passphrase-file" in result.stderr
    assert "LOOM_PRIVATE_KEY" in result.stderr


def test_login_without_any_wallet_names_the_options(sandbox_url: str):
    result = run_loom("--api-url", sandbox_url, "login")

    assert result.returncode == 3
    assert "no wallet is stored" in result.stderr
    assert "LOOM_PRIVATE_KEY" in result.stderr
    assert "loom wallet new" in result.stderr


def test_login_address_must_match_key(sandbox_url: str, new_account: Callable[[], Any]):
    account, other = new_account(), new_account()

    result = run_loom("--api-url", sandbox_url, "login", "--address", other.address, env={"LOOM_PRIVATE_KEY": key_hex(account)})

    assert result.returncode == 2
    assert f"not --address {other.address}" in result.stderr


def test_login_over_plain_http_to_remote_host_is_rejected():
    result = run_loom("--api-url", "http://api.example.invalid/v1", "login", env={"LOOM_PRIVATE_KEY": "0x" + "11" * 32})

    assert result.returncode == 2
    assert "plain http to api.example.invalid is not allowed" in result.stderr
    assert "https://api.example.invalid/v1" in result.stderr


# -- using the token ---------------------------------------------------------------------------


def login_with_key(url: str, account: Any) -> None:
    result = run_loom("--api-url", url, "login", env={"LOOM_PRIVATE_KEY": key_hex(account)})
    assert result.returncode == 0, result.stderr


def test_whoami_after_login(sandbox_url: str, new_account: Callable[[], Any], isolated_env: Path):
    account = new_account()
    login_with_key(sandbox_url, account)

    table = run_loom("--api-url", sandbox_url, "whoami")
    as_json = run_loom("--api-url", sandbox_url, "whoami", "-o", "json")

    assert table.returncode == 0, table.stderr
    assert account.address in table.stdout
    assert sandbox_url in table.stdout
    assert "tokens.json" in table.stdout
    data = json.loads(as_json.stdout)
    assert data["address"] == account.address
    assert data["api_url"] == sandbox_url
    assert data["expires_at"] == stored_token().expires_at  # type: ignore[union-attr]
    assert data["token_store"] == f"file {isolated_env / 'data' / 'tokens.json'}"


def test_whoami_without_login_exits_3(sandbox_url: str):
    result = run_loom("--api-url", sandbox_url, "whoami")

    assert result.returncode == 3
    assert "not logged in" in result.stderr
    assert "loom login" in result.stderr
    assert "LOOM_PRIVATE_KEY" in result.stderr


def test_whoami_with_loom_token(sandbox_url: str, new_account: Callable[[], Any]):
    account = new_account()
    token = api_login(sandbox_url, account)

    result = run_loom("--api-url", sandbox_url, "whoami", "-o", "json", env={"LOOM_TOKEN": token})

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["address"] == account.address
    assert data["token_store"] == "LOOM_TOKEN environment variable"
    assert stored_token() is None


def test_auth_token_prints_usable_token(sandbox_url: str, new_account: Callable[[], Any]):
    account = new_account()
    login_with_key(sandbox_url, account)

    result = run_loom("--api-url", sandbox_url, "auth", "token")

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    token = result.stdout.strip()
    me = httpx.get(f"{sandbox_url}/auth/me", headers={"Authorization": f"Bearer {token}"}, trust_env=False)
    assert me.status_code == 200
    assert me.json()["address"] == account.address


def test_verbose_output_never_shows_token(sandbox_url: str, new_account: Callable[[], Any]):
    account = new_account()

    login = run_loom("--api-url", sandbox_url, "-vv", "login", env={"LOOM_PRIVATE_KEY": key_hex(account)})
    whoami = run_loom("--api-url", sandbox_url, "-vv", "whoami")
    token = run_loom("--api-url", sandbox_url, "-vv", "auth", "token")

    secret = stored_token().token  # type: ignore[union-attr]
    for result in (login, whoami, token):
        assert result.returncode == 0, result.stderr
        assert secret not in result.stderr
        assert bytes(account.key).hex() not in result.stderr
    assert "[redacted]" in login.stderr
    assert "authorization: [redacted]" in whoami.stderr
    assert "POST " + sandbox_url + "/auth/login -> 200" in login.stderr
    assert token.stdout.strip() == secret


def test_logout_forgets_token_and_is_idempotent(sandbox_url: str, new_account: Callable[[], Any]):
    account = new_account()
    login_with_key(sandbox_url, account)

    first = run_loom("--api-url", sandbox_url, "logout")
    second = run_loom("--api-url", sandbox_url, "logout")
    whoami = run_loom("--api-url", sandbox_url, "whoami")

    assert first.returncode == 0
    assert "removed the token" in first.stderr
    assert second.returncode == 0
    assert "no token to remove" in second.stderr
    assert first.stdout == second.stdout == ""
    assert whoami.returncode == 3
    assert stored_token() is None


def test_token_is_never_sent_to_another_api(sandbox_url: str, new_account: Callable[[], Any], nonce_server: NonceServer):
    login_with_key(sandbox_url, new_account())

    result = run_loom("--api-url", nonce_server.url, "-v", "whoami")

    assert result.returncode == 3
    assert f"issued by {sandbox_url}" in result.stderr
    assert nonce_server.requests == []


# -- renewal ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_ttl_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A sandbox whose tokens live 2 seconds: inside the renewal margin as soon as they are issued."""
    folder = tmp_path_factory.mktemp("short-ttl")
    sandbox = launch_sandbox("--token-ttl", "2", db_path=folder / "sandbox.db", log_path=folder / "sandbox.log")
    try:
        yield sandbox.url
    finally:
        sandbox.stop()


def forged_token(address: str) -> str:
    """A well-formed JWT for `address` that no sandbox issued, so every sandbox responds with 401."""
    now = int(time.time())
    return jwt.encode({"sub": address, "iat": now, "exp": now + 3000, "jti": "forged"}, "not-the-sandbox-secret-0123456789", algorithm="HS256")


def store_token_for(url: str, address: str, token: str, expires_at: str) -> None:
    store().set_token("default", StoredToken(token=token, api_url=url, address=address, expires_at=expires_at))


def test_expired_token_is_renewed_with_private_key(short_ttl_url: str, new_account: Callable[[], Any]):
    account = new_account()
    login_with_key(short_ttl_url, account)
    before = stored_token()
    time.sleep(2.5)

    result = run_loom("--api-url", short_ttl_url, "whoami", "-o", "json", env={"LOOM_PRIVATE_KEY": key_hex(account)})

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["address"] == account.address
    after = stored_token()
    assert after is not None and before is not None
    assert after.token != before.token


def test_expired_token_is_renewed_with_stored_wallet(short_ttl_url: str, new_account: Callable[[], Any]):
    account = new_account()
    store().set_keystore(account.address, fast_keystore(bytes(account.key), PASSPHRASE))
    login_with_key(short_ttl_url, account)
    before = stored_token()

    result = run_loom("--api-url", short_ttl_url, "whoami", "-o", "json", env={"LOOM_PASSPHRASE": PASSPHRASE})

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["address"] == account.address
    assert stored_token().token != before.token  # type: ignore[union-attr]


def test_expired_token_without_key_exits_3(short_ttl_url: str, new_account: Callable[[], Any]):
    login_with_key(short_ttl_url, new_account())

    result = run_loom("--api-url", short_ttl_url, "whoami")

    assert result.returncode == 3
    assert "expire" in result.stderr
    assert "loom login" in result.stderr
    assert "LOOM_PRIVATE_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_rejected_token_is_renewed_once(sandbox_url: str, new_account: Callable[[], Any]):
    account = new_account()
    forged = forged_token(account.address)
    store_token_for(sandbox_url, account.address, forged, "2099-01-01T00:00:00.000000Z")

    result = run_loom("--api-url", sandbox_url, "-v", "whoami", "-o", "json", env={"LOOM_PRIVATE_KEY": key_hex(account)})

    assert result.returncode == 0, result.stderr
    assert f"GET {sandbox_url}/auth/me -> 401" in result.stderr
    assert f"GET {sandbox_url}/auth/me -> 200" in result.stderr
    assert result.stderr.count("/auth/login -> 200") == 1
    assert stored_token().token != forged  # type: ignore[union-attr]


def test_rejected_token_without_key_exits_3(sandbox_url: str, new_account: Callable[[], Any]):
    account = new_account()
    store_token_for(sandbox_url, account.address, forged_token(account.address), "2099-01-01T00:00:00.000000Z")

    result = run_loom("--api-url", sandbox_url, "whoami")

    assert result.returncode == 3
    assert "loom login" in result.stderr
    assert "LOOM_PRIVATE_KEY" in result.stderr


def test_rejected_loom_token_exits_3(sandbox_url: str, new_account: Callable[[], Any]):
    account = new_account()

    result = run_loom("--api-url", sandbox_url, "whoami", env={"LOOM_TOKEN": forged_token(account.address), "LOOM_PRIVATE_KEY": key_hex(account)})

    assert result.returncode == 3
    assert "LOOM_TOKEN" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("key_source", ["private key", "stored wallet"])
def test_parallel_processes_renew_once(sandbox_url: str, new_account: Callable[[], Any], key_source: str):
    account = new_account()
    store_token_for(sandbox_url, account.address, "expired.token.value", "2000-01-01T00:00:00.000000Z")
    if key_source == "private key":
        env = loom_env({"LOOM_PRIVATE_KEY": key_hex(account)})
    else:
        store().set_keystore(account.address, fast_keystore(bytes(account.key), PASSPHRASE))
        env = loom_env({"LOOM_PASSPHRASE": PASSPHRASE})

    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "loom_cli", "--api-url", sandbox_url, "-v", "whoami", "-o", "json"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(20)
    ]
    outputs = [proc.communicate(timeout=120) for proc in processes]

    for proc, (stdout, stderr) in zip(processes, outputs):
        assert proc.returncode == 0, stderr
        assert json.loads(stdout)["address"] == account.address
    logins = sum(stderr.count("/auth/login -> 200") for _, stderr in outputs)
    assert 1 <= logins <= 3


# -- a server that sends something other than a nonce ----------------------------------------


SIWE_MESSAGE = (
    "evil.example.invalid wants you to sign in with your Ethereum account:\n"
    "0x0000000000000000000000000000000000000001\n\n"
    "URI: https://evil.example.invalid\nVersion: 1\nChain ID: 1\nNonce: abcdefgh12345678\n"
    "Issued At: 2030-01-01T00:00:00Z"
)


class NonceServer(ThreadingHTTPServer):
    """Serves GET /v1/auth/nonce with a chosen nonce and records every request line."""

    daemon_threads = True

    def __init__(self, nonce: str) -> None:
        super().__init__(("127.0.0.1", 0), _NonceHandler)
        self.nonce = nonce
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _NonceHandler(BaseHTTPRequestHandler):
    server: NonceServer

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        self.server.requests.append(f"GET {self.path}")
        self._reply(200, {"address": "0x0", "nonce": self.server.nonce, "expires_at": "2030-01-01T00:00:00.000000Z"})

    def do_POST(self) -> None:  # noqa: N802
        self.server.requests.append(f"POST {self.path}")
        self._reply(500, {"error": {"code": "internal", "message": "This test server never logs anyone in."}})

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def nonce_server(request: pytest.FixtureRequest) -> Iterator[NonceServer]:
    server = NonceServer(getattr(request, "param", "abcdefgh12345678"))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.parametrize(
    "nonce_server",
    [SIWE_MESSAGE, "abcdefgh12345678\nand approve 100 LOOM", "A" * 65, "x" * 100_000],
    ids=["eip-4361", "multi-line", "65-characters", "huge"],
    indirect=True,
)
def test_login_rejects_nonce_that_is_not_plain(nonce_server: NonceServer, new_account: Callable[[], Any], tmp_path: Path):
    marker = tmp_path / "signer-ran"
    script = tmp_path / "signer.py"
    script.write_text(f"from pathlib import Path\nPath({str(marker)!r}).touch()\nprint('00' * 65)\n")

    result = run_loom(
        "--api-url", nonce_server.url, "login", "--address", new_account().address, "--signer-command", f"{sys.executable} {script}",
    )

    assert result.returncode == 3, result.stderr
    assert "did not sign the login nonce" in result.stderr
    assert "authorise something else" in result.stderr
    assert len(result.stderr) < 2000
    assert not marker.exists()
    assert all(line.startswith("GET /v1/auth/nonce") for line in nonce_server.requests)
    assert stored_token() is None


@pytest.mark.parametrize("nonce_server", [SIWE_MESSAGE], ids=["eip-4361"], indirect=True)
def test_private_key_never_signs_other_text(nonce_server: NonceServer, new_account: Callable[[], Any]):
    result = run_loom("--api-url", nonce_server.url, "login", env={"LOOM_PRIVATE_KEY": key_hex(new_account())})

    assert result.returncode == 3, result.stderr
    assert "EIP-4361 sign-in message" in result.stderr
    assert all(line.startswith("GET /v1/auth/nonce") for line in nonce_server.requests)
    assert stored_token() is None


def test_token_store_file_is_private(sandbox_url: str, new_account: Callable[[], Any], isolated_env: Path):
    login_with_key(sandbox_url, new_account())

    tokens_file = isolated_env / "data" / "tokens.json"

    assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
