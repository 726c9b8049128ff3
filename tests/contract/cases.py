"""The exit-code table: every command, each way it can end, and the code scripts see.

Each `Case` runs the real CLI once, against the shared sandbox or a failing
API, with stdin closed. `test_exit_codes.py` runs them; `test_matrix.py`
checks that no command is missing a row.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from tests.contract.world import World

# Exit codes from the CLI's contract.
OK, USAGE, AUTH, NOT_FOUND, CONFLICT, UNAVAILABLE = 0, 2, 3, 4, 5, 6
JOB_FAILED, JOB_CANCELLED, WATCH_TIMEOUT, INTERRUPTED = 10, 11, 12, 130

# A job id of the right form that no sandbox has issued.
MISSING_JOB = "job_doesNotExist0"


@dataclass(frozen=True)
class Case:
    command: str  # the command path, such as "jobs claim"
    code: int
    why: str
    run: Callable[[World], subprocess.CompletedProcess[str]]
    says: str | None = None  # text the error on stderr must contain, such as the flag at fault

    @property
    def id(self) -> str:
        return f"{self.command}:{self.code}:{self.why}"


def _signer_command(w: World, account_hex: str) -> str:
    """Write a --signer-command script that signs every nonce with the key `account_hex`."""
    script = w.file(
        "signer.py",
        "import sys\n"
        "from eth_account import Account\n"
        "from eth_account.messages import encode_defunct\n"
        "nonce = sys.stdin.read().strip()\n"
        f"signed = Account.from_key({account_hex!r}).sign_message(encode_defunct(text=nonce))\n"
        "print('0x' + signed.signature.hex().removeprefix('0x'))\n",
    )
    return f"{sys.executable} {script}"


def _corrupt_config(w: World) -> None:
    w.config_dir.mkdir(parents=True, exist_ok=True)
    (w.config_dir / "config.toml").write_text("[profiles.default\napi_url = ", encoding="utf-8")


def _logout_after_login(w: World) -> subprocess.CompletedProcess[str]:
    w.loom("login", env=w.creator.key_env)
    return w.loom("logout")


def _claim_twice(w: World) -> subprocess.CompletedProcess[str]:
    job_id = w.open_job()
    w.market.claim(w.stranger, job_id)
    return w.loom("jobs", "claim", job_id, env=w.worker.token_env)


def _reuse_create_key(w: World) -> subprocess.CompletedProcess[str]:
    first = w.loom("jobs", "create", w.spec_file("a.yaml"), "--idempotency-key", "contract-key-1", "-q", env=w.creator.token_env)
    assert first.returncode == 0, first.stderr
    return w.loom("jobs", "create", w.spec_file("b.yaml", name="another body"), "--idempotency-key", "contract-key-1", env=w.creator.token_env)


def _reuse_report_key(w: World) -> subprocess.CompletedProcess[str]:
    job_id = w.in_progress_job()
    first = w.loom("results", "report", job_id, "--output-json", "1", "--idempotency-key", "report-key-1", "-q", env=w.worker.token_env)
    assert first.returncode == 0, first.stderr
    return w.loom("results", "report", job_id, "--output-json", "2", "--idempotency-key", "report-key-1", env=w.worker.token_env)


def _export_twice(w: World) -> subprocess.CompletedProcess[str]:
    w.stored_wallet()
    target = w.file("backup.json", "{}")
    return w.loom("wallet", "export", "--keystore", target)


def _import_twice(w: World) -> subprocess.CompletedProcess[str]:
    account = w.stored_wallet("pw")
    return w.loom("wallet", "import", "--keystore", w.keystore_file(account, "pw"), env={"LOOM_PASSPHRASE": "pw"})


def _stored_login(w: World, passphrase: str) -> subprocess.CompletedProcess[str]:
    w.stored_wallet("correct horse")
    return w.loom("login", env={"LOOM_PASSPHRASE": passphrase})


def _remove_stored(w: World, *extra: str) -> subprocess.CompletedProcess[str]:
    account = w.stored_wallet()
    return w.loom("wallet", "remove", account.address, *extra)


def _config_set_then_get(w: World) -> subprocess.CompletedProcess[str]:
    assert w.loom("config", "set", "output", "yaml").returncode == 0
    return w.loom("config", "get", "output")


def _wrong_login_signature(w: World) -> subprocess.CompletedProcess[str]:
    # The script signs with the worker's key while claiming to be the creator.
    return w.loom("login", "--address", w.creator.address, "--signer-command", _signer_command(w, w.worker.key_hex))


ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"

CASES: list[Case] = [
    # -- root -----------------------------------------------------------------------------------
    Case("(root)", OK, "version", lambda w: w.loom("--version")),
    Case("(root)", USAGE, "unknown flag", lambda w: w.loom("--no-such-flag", "jobs", "list"), says="--no-such-flag"),
    Case("(root)", USAGE, "timeout out of range", lambda w: w.loom("--timeout", "0", "jobs", "list"), says="--timeout"),
    Case("(root)", USAGE, "unknown output format", lambda w: w.loom("-o", "xml", "jobs", "list"), says="xml"),
    Case("(root)", USAGE, "unknown command", lambda w: w.loom("jobz"), says="jobz"),
    Case("(root)", USAGE, "--json with -o yaml", lambda w: w.loom("--json", "-o", "yaml", "config", "list"), says="--json"),
    # -- login, logout, whoami, auth token -----------------------------------------------------
    Case("login", OK, "key from LOOM_PRIVATE_KEY", lambda w: w.loom("login", env=w.creator.key_env)),
    Case("login", OK, "stored wallet and LOOM_PASSPHRASE", lambda w: _stored_login(w, "correct horse")),
    Case("login", OK, "keystore and passphrase file", lambda w: w.loom(
        "login", "--keystore", w.keystore_file(w.creator.account, "pw"), "--passphrase-file", w.file("pass.txt", "pw\n"))),
    Case("login", USAGE, "two key sources", lambda w: w.loom("login", "--keystore", "k.json", "--manual"), says="--keystore and --manual"),
    Case("login", USAGE, "invalid address", lambda w: w.loom("login", "--address", "0x123", "--manual"), says="0x123"),
    Case("login", USAGE, "missing keystore file", lambda w: w.loom("login", "--keystore", str(w.tmp_path / "missing.json")), says="missing.json"),
    Case("login", USAGE, "malformed LOOM_PRIVATE_KEY", lambda w: w.loom("login", env={"LOOM_PRIVATE_KEY": "0x1234"}), says="LOOM_PRIVATE_KEY"),
    Case("login", AUTH, "no key anywhere", lambda w: w.loom("login"), says="LOOM_PRIVATE_KEY"),
    Case("login", AUTH, "wrong passphrase", lambda w: _stored_login(w, "wrong"), says="wrong passphrase"),
    Case("login", AUTH, "signature of another key", _wrong_login_signature),
    Case("login", UNAVAILABLE, "garbage API", lambda w: w.loom("login", env=w.creator.key_env, api_url=w.garbage_url)),
    Case("logout", OK, "without a token", lambda w: w.loom("logout")),
    Case("logout", OK, "after a login", _logout_after_login),
    Case("logout", USAGE, "unknown flag", lambda w: w.loom("logout", "--all"), says="--all"),
    Case("logout", USAGE, "invalid profile name", lambda w: w.loom("--profile", "no spaces", "logout"), says="no spaces"),
    Case("whoami", OK, "LOOM_TOKEN", lambda w: w.loom("whoami", env=w.creator.token_env)),
    Case("whoami", USAGE, "unknown output format", lambda w: w.loom("whoami", "-o", "xml"), says="xml"),
    Case("whoami", AUTH, "not logged in", lambda w: w.loom("whoami"), says="loom login"),
    Case("whoami", AUTH, "token the API rejects", lambda w: w.loom("whoami", env={"LOOM_TOKEN": "not.a.token"}), says="LOOM_TOKEN"),
    Case("whoami", UNAVAILABLE, "garbage API", lambda w: w.loom("whoami", env=w.creator.token_env, api_url=w.garbage_url)),
    Case("auth token", OK, "LOOM_TOKEN", lambda w: w.loom("auth", "token", env=w.creator.token_env)),
    Case("auth token", OK, "login with LOOM_PRIVATE_KEY", lambda w: w.loom("auth", "token", env=w.creator.key_env)),
    Case("auth token", USAGE, "unexpected argument", lambda w: w.loom("auth", "token", "extra"), says="extra"),
    Case("auth token", AUTH, "not logged in", lambda w: w.loom("auth", "token"), says="loom login"),
    Case("auth token", UNAVAILABLE, "garbage API", lambda w: w.loom("auth", "token", env=w.creator.key_env, api_url=w.garbage_url)),
    # -- wallet ---------------------------------------------------------------------------------
    Case("wallet new", OK, "LOOM_PASSPHRASE", lambda w: w.loom("wallet", "new", env={"LOOM_PASSPHRASE": "pw"})),
    Case("wallet new", USAGE, "missing passphrase file", lambda w: w.loom("wallet", "new", "--passphrase-file", str(w.tmp_path / "nope.txt")), says="nope.txt"),
    Case("wallet new", USAGE, "empty passphrase", lambda w: w.loom("wallet", "new", env={"LOOM_PASSPHRASE": ""}), says="empty passphrase"),
    Case("wallet new", AUTH, "no passphrase without a terminal", lambda w: w.loom("wallet", "new"), says="LOOM_PASSPHRASE"),
    Case("wallet import", OK, "keystore file", lambda w: w.loom(
        "wallet", "import", "--keystore", w.keystore_file(w.creator.account, "pw"), env={"LOOM_PASSPHRASE": "pw"})),
    Case("wallet import", OK, "hex key on stdin", lambda w: w.loom("wallet", "import", input=w.creator.key_hex + "\n", env={"LOOM_PASSPHRASE": "pw"})),
    Case("wallet import", USAGE, "key that is not hex", lambda w: w.loom("wallet", "import", input="not a key\n", env={"LOOM_PASSPHRASE": "pw"}), says="hex"),
    Case("wallet import", USAGE, "nothing on stdin", lambda w: w.loom("wallet", "import", env={"LOOM_PASSPHRASE": "pw"}), says="--private-key-file"),
    Case("wallet import", USAGE, "missing key file", lambda w: w.loom("wallet", "import", "--private-key-file", str(w.tmp_path / "k.hex")), says="k.hex"),
    Case("wallet import", USAGE, "keystore not JSON", lambda w: w.loom("wallet", "import", "--keystore", w.file("k.json", "{oops")), says="k.json"),
    Case("wallet import", USAGE, "two key sources", lambda w: w.loom("wallet", "import", "--keystore", "a", "--private-key-file", "b"), says="--keystore"),
    Case("wallet import", AUTH, "wrong keystore passphrase", lambda w: w.loom(
        "wallet", "import", "--keystore", w.keystore_file(w.creator.account, "pw"), env={"LOOM_PASSPHRASE": "nope"}), says="wrong passphrase"),
    Case("wallet import", AUTH, "no passphrase without a terminal", lambda w: w.loom(
        "wallet", "import", "--keystore", w.keystore_file(w.creator.account, "pw")), says="LOOM_PASSPHRASE"),
    Case("wallet import", CONFLICT, "wallet already stored", _import_twice, says="--force"),
    Case("wallet list", OK, "no wallets", lambda w: w.loom("wallet", "list")),
    Case("wallet list", USAGE, "unknown output format", lambda w: w.loom("wallet", "list", "-o", "csv"), says="csv"),
    Case("wallet export", OK, "to a file", lambda w: (w.stored_wallet(), w.loom("wallet", "export", "--keystore", str(w.tmp_path / "out.json")))[1]),
    Case("wallet export", USAGE, "file exists", _export_twice, says="--force"),
    Case("wallet export", USAGE, "invalid address", lambda w: w.loom("wallet", "export", "--keystore", "-", "--address", "0xzz"), says="0xzz"),
    Case("wallet export", USAGE, "missing --keystore", lambda w: w.loom("wallet", "export"), says="--keystore"),
    Case("wallet export", NOT_FOUND, "no wallet stored", lambda w: w.loom("wallet", "export", "--keystore", "-"), says="loom wallet new"),
    Case("wallet export", NOT_FOUND, "unknown address", lambda w: w.loom("wallet", "export", "--keystore", "-", "--address", ADDRESS), says=ADDRESS),
    Case("wallet remove", OK, "with --yes", lambda w: _remove_stored(w, "--yes")),
    Case("wallet remove", USAGE, "no --yes without a terminal", lambda w: _remove_stored(w), says="--yes"),
    Case("wallet remove", USAGE, "invalid address", lambda w: w.loom("wallet", "remove", "0xzz", "--yes"), says="0xzz"),
    Case("wallet remove", NOT_FOUND, "unknown address", lambda w: w.loom("wallet", "remove", ADDRESS, "--yes"), says=ADDRESS),
    # -- jobs: browse ---------------------------------------------------------------------------
    Case("jobs list", OK, "first page", lambda w: w.loom("jobs", "list")),
    Case("jobs list", OK, "--mine with LOOM_TOKEN", lambda w: w.loom("jobs", "list", "--mine", env=w.creator.token_env)),
    Case("jobs list", USAGE, "unknown status", lambda w: w.loom("jobs", "list", "--status", "Sleeping"), says="Sleeping"),
    Case("jobs list", USAGE, "limit out of range", lambda w: w.loom("jobs", "list", "--limit", "0"), says="--limit"),
    Case("jobs list", USAGE, "invalid creator", lambda w: w.loom("jobs", "list", "--creator", "0xabc"), says="0xabc"),
    Case("jobs list", USAGE, "--mine with --creator", lambda w: w.loom("jobs", "list", "--mine", "--creator", ADDRESS), says="--mine"),
    Case("jobs list", USAGE, "--mine with a malformed LOOM_PRIVATE_KEY", lambda w: w.loom(
        "jobs", "list", "--mine", env={"LOOM_PRIVATE_KEY": "not-hex"}), says="LOOM_PRIVATE_KEY"),
    Case("jobs list", AUTH, "--mine not logged in", lambda w: w.loom("jobs", "list", "--mine"), says="loom login"),
    Case("jobs list", UNAVAILABLE, "garbage API", lambda w: w.loom("jobs", "list", api_url=w.garbage_url)),
    Case("jobs status", OK, "open job", lambda w: w.loom("jobs", "status", w.open_job())),
    Case("jobs status", USAGE, "invalid id", lambda w: w.loom("jobs", "status", "12345"), says="12345"),
    Case("jobs status", NOT_FOUND, "missing job", lambda w: w.loom("jobs", "status", MISSING_JOB), says=MISSING_JOB),
    Case("jobs status", UNAVAILABLE, "garbage API", lambda w: w.loom("jobs", "status", MISSING_JOB, api_url=w.garbage_url)),
    # -- jobs: specs ----------------------------------------------------------------------------
    Case("jobs create", OK, "valid spec", lambda w: w.loom("jobs", "create", w.spec_file(), env=w.creator.token_env)),
    Case("jobs create", OK, "spec on stdin, --dry-run", lambda w: w.loom("jobs", "create", "-", "--dry-run", input=w.spec_text())),
    Case("jobs create", USAGE, "invalid spec", lambda w: w.loom("jobs", "create", w.spec_file(image="UPPER CASE"), env=w.creator.token_env), says="image"),
    Case("jobs create", USAGE, "missing file", lambda w: w.loom("jobs", "create", str(w.tmp_path / "none.yaml")), says="none.yaml"),
    Case("jobs create", USAGE, "not YAML", lambda w: w.loom("jobs", "create", w.file("bad.yaml", "name: [unclosed\n")), says="bad.yaml"),
    Case("jobs create", USAGE, "invalid idempotency key", lambda w: w.loom(
        "jobs", "create", w.spec_file(), "--idempotency-key", "has space"), says="idempotency key"),
    Case("jobs create", USAGE, "--timeout without --wait", lambda w: w.loom("jobs", "create", w.spec_file(), "--timeout", "5"), says="--wait"),
    Case("jobs create", AUTH, "not logged in", lambda w: w.loom("jobs", "create", w.spec_file()), says="loom login"),
    Case("jobs create", AUTH, "token the API rejects", lambda w: w.loom("jobs", "create", w.spec_file(), env={"LOOM_TOKEN": "x.y.z"})),
    Case("jobs create", CONFLICT, "idempotency key reused with another spec", _reuse_create_key, says="idempotency"),
    Case("jobs create", UNAVAILABLE, "garbage API", lambda w: w.loom("jobs", "create", w.spec_file(), env=w.creator.token_env, api_url=w.garbage_url)),
    Case("jobs validate", OK, "valid spec", lambda w: w.loom("jobs", "validate", w.spec_file())),
    Case("jobs validate", USAGE, "invalid spec", lambda w: w.loom("jobs", "validate", w.spec_file(reward={"amount": "-1"})), says="reward"),
    Case("jobs validate", USAGE, "missing file", lambda w: w.loom("jobs", "validate", str(w.tmp_path / "none.yaml")), says="none.yaml"),
    Case("jobs validate", USAGE, "empty stdin", lambda w: w.loom("jobs", "validate", "-"), says="empty"),
    Case("jobs schema", OK, "prints the schema", lambda w: w.loom("jobs", "schema")),
    Case("jobs schema", USAGE, "unexpected argument", lambda w: w.loom("jobs", "schema", "job.yaml"), says="job.yaml"),
    Case("jobs init", OK, "new file", lambda w: w.loom("jobs", "init", str(w.tmp_path / "new.yaml"))),
    Case("jobs init", OK, "stdout", lambda w: w.loom("jobs", "init", "-")),
    Case("jobs init", USAGE, "file exists", lambda w: w.loom("jobs", "init", w.spec_file("taken.yaml")), says="--force"),
    Case("jobs init", USAGE, "folder missing", lambda w: w.loom("jobs", "init", str(w.tmp_path / "no" / "such" / "job.yaml")), says="job.yaml"),
    # -- jobs: claim and cancel -----------------------------------------------------------------
    Case("jobs claim", OK, "open job", lambda w: w.loom("jobs", "claim", w.open_job(), env=w.worker.token_env)),
    Case("jobs claim", OK, "login with LOOM_PRIVATE_KEY", lambda w: w.loom("jobs", "claim", w.open_job(), env=w.worker.key_env)),
    Case("jobs claim", USAGE, "invalid id", lambda w: w.loom("jobs", "claim", "job-1", env=w.worker.token_env), says="job-1"),
    Case("jobs claim", USAGE, "invalid idempotency key", lambda w: w.loom(
        "jobs", "claim", MISSING_JOB, "--idempotency-key", "", env=w.worker.token_env), says="idempotency key"),
    Case("jobs claim", AUTH, "not logged in", lambda w: w.loom("jobs", "claim", MISSING_JOB), says="loom login"),
    Case("jobs claim", NOT_FOUND, "missing job", lambda w: w.loom("jobs", "claim", MISSING_JOB, env=w.worker.token_env), says=MISSING_JOB),
    Case("jobs claim", CONFLICT, "own job", lambda w: w.loom("jobs", "claim", w.open_job(), env=w.creator.token_env), says="own job"),
    Case("jobs claim", CONFLICT, "already claimed", _claim_twice, says="loom jobs status"),
    Case("jobs claim", UNAVAILABLE, "garbage API", lambda w: w.loom("jobs", "claim", MISSING_JOB, env=w.worker.token_env, api_url=w.garbage_url)),
    Case("jobs cancel", OK, "open job with --yes", lambda w: w.loom("jobs", "cancel", w.open_job(), "--yes", env=w.creator.token_env)),
    Case("jobs cancel", OK, "claimed job with --yes", lambda w: w.loom("jobs", "cancel", w.in_progress_job(), "--yes", env=w.creator.token_env)),
    Case("jobs cancel", USAGE, "invalid id", lambda w: w.loom("jobs", "cancel", "nope", "--yes", env=w.creator.token_env), says="nope"),
    Case("jobs cancel", USAGE, "no --yes without a terminal", lambda w: w.loom("jobs", "cancel", w.open_job(), env=w.creator.token_env), says="--yes"),
    Case("jobs cancel", AUTH, "not logged in", lambda w: w.loom("jobs", "cancel", MISSING_JOB, "--yes"), says="loom login"),
    Case("jobs cancel", NOT_FOUND, "missing job", lambda w: w.loom("jobs", "cancel", MISSING_JOB, "--yes", env=w.creator.token_env), says=MISSING_JOB),
    Case("jobs cancel", CONFLICT, "job finished", lambda w: w.loom("jobs", "cancel", w.finished_job(), "--yes", env=w.creator.token_env), says="ended"),
    Case("jobs cancel", CONFLICT, "job already cancelled", lambda w: w.loom("jobs", "cancel", w.cancelled_job(), "--yes", env=w.creator.token_env)),
    Case("jobs cancel", CONFLICT, "someone else's job", lambda w: w.loom("jobs", "cancel", w.open_job(), "--yes", env=w.stranger.token_env), says="creator"),
    Case("jobs cancel", UNAVAILABLE, "garbage API", lambda w: w.loom("jobs", "cancel", MISSING_JOB, "--yes", env=w.creator.token_env, api_url=w.garbage_url)),
    # -- jobs watch (10, 11 and 12 are its outcomes; 130 is in test_interrupt.py) --------------
    Case("jobs watch", OK, "completed job", lambda w: w.loom("jobs", "watch", w.finished_job("Completed"))),
    Case("jobs watch", JOB_FAILED, "failed job", lambda w: w.loom("jobs", "watch", w.finished_job("Failed"))),
    Case("jobs watch", JOB_CANCELLED, "cancelled job", lambda w: w.loom("jobs", "watch", w.cancelled_job())),
    Case("jobs watch", JOB_FAILED, "failed wins over cancelled", lambda w: w.loom("jobs", "watch", w.cancelled_job(), w.finished_job("Failed"))),
    Case("jobs watch", WATCH_TIMEOUT, "timeout", lambda w: w.loom("jobs", "watch", w.open_job(), "--timeout", "1", "--interval", "0.2")),
    Case("jobs watch", USAGE, "invalid id", lambda w: w.loom("jobs", "watch", "job_ok", "bad id"), says="bad id"),
    Case("jobs watch", USAGE, "no ids", lambda w: w.loom("jobs", "watch"), says="ID"),
    Case("jobs watch", USAGE, "interval out of range", lambda w: w.loom("jobs", "watch", MISSING_JOB, "--interval", "0"), says="--interval"),
    Case("jobs watch", NOT_FOUND, "missing job", lambda w: w.loom("jobs", "watch", MISSING_JOB), says=MISSING_JOB),
    Case("jobs watch", UNAVAILABLE, "garbage API", lambda w: w.loom("jobs", "watch", MISSING_JOB, api_url=w.garbage_url)),
    Case("jobs create", WATCH_TIMEOUT, "--wait timeout", lambda w: w.loom(
        "jobs", "create", w.spec_file(), "--wait", "--timeout", "1", "--interval", "0.2", env=w.creator.token_env)),
    # -- results ----------------------------------------------------------------------------------
    Case("results report", OK, "completed", lambda w: w.loom("results", "report", w.in_progress_job(), "--output-json", '{"n": 1}', env=w.worker.token_env)),
    Case("results report", OK, "failed, output from stdin", lambda w: w.loom(
        "results", "report", w.in_progress_job(), "--failed", "--output-file", "-", input="null", env=w.worker.token_env)),
    Case("results report", USAGE, "invalid JSON", lambda w: w.loom("results", "report", MISSING_JOB, "--output-json", "{nope", env=w.worker.token_env), says="--output-json"),
    Case("results report", USAGE, "no output given", lambda w: w.loom("results", "report", MISSING_JOB, env=w.worker.token_env), says="--output-json"),
    Case("results report", USAGE, "missing output file", lambda w: w.loom(
        "results", "report", MISSING_JOB, "--output-file", str(w.tmp_path / "out.json"), env=w.worker.token_env), says="out.json"),
    Case("results report", USAGE, "invalid sha256", lambda w: w.loom(
        "results", "report", MISSING_JOB, "--output-json", "1", "--uri", "s3://b/k", "--sha256", "abc", env=w.worker.token_env), says="--sha256"),
    Case("results report", USAGE, "invalid id", lambda w: w.loom("results", "report", "42", "--output-json", "1", env=w.worker.token_env), says="42"),
    Case("results report", AUTH, "not logged in", lambda w: w.loom("results", "report", MISSING_JOB, "--output-json", "1"), says="loom login"),
    Case("results report", NOT_FOUND, "missing job", lambda w: w.loom("results", "report", MISSING_JOB, "--output-json", "1", env=w.worker.token_env), says=MISSING_JOB),
    Case("results report", CONFLICT, "not the worker", lambda w: w.loom(
        "results", "report", w.in_progress_job(), "--output-json", "1", env=w.stranger.token_env), says="worker"),
    Case("results report", CONFLICT, "job not in progress", lambda w: w.loom(
        "results", "report", w.finished_job(), "--output-json", "1", env=w.worker.token_env), says="InProgress"),
    Case("results report", CONFLICT, "idempotency key reused with another body", _reuse_report_key),
    Case("results report", UNAVAILABLE, "garbage API", lambda w: w.loom(
        "results", "report", MISSING_JOB, "--output-json", "1", env=w.worker.token_env, api_url=w.garbage_url)),
    Case("results get", OK, "as the creator", lambda w: w.loom("results", "get", w.finished_job(), env=w.creator.token_env)),
    Case("results get", OK, "as the worker, output to stdout", lambda w: w.loom("results", "get", w.finished_job(), "--output-file", "-", env=w.worker.token_env)),
    Case("results get", USAGE, "invalid id", lambda w: w.loom("results", "get", "JOB_1", env=w.creator.token_env), says="JOB_1"),
    Case("results get", USAGE, "unwritable output file", lambda w: w.loom(
        "results", "get", w.finished_job(), "--output-file", str(w.tmp_path / "no" / "out.json"), env=w.creator.token_env), says="out.json"),
    Case("results get", AUTH, "not logged in", lambda w: w.loom("results", "get", MISSING_JOB), says="loom login"),
    Case("results get", NOT_FOUND, "missing job", lambda w: w.loom("results", "get", MISSING_JOB, env=w.creator.token_env), says=MISSING_JOB),
    Case("results get", NOT_FOUND, "no result yet", lambda w: w.loom("results", "get", w.in_progress_job(), env=w.creator.token_env), says="no result"),
    Case("results get", CONFLICT, "neither creator nor worker", lambda w: w.loom("results", "get", w.finished_job(), env=w.stranger.token_env)),
    Case("results get", UNAVAILABLE, "garbage API", lambda w: w.loom("results", "get", MISSING_JOB, env=w.creator.token_env, api_url=w.garbage_url)),
    # -- config ---------------------------------------------------------------------------------
    Case("config list", OK, "defaults", lambda w: w.loom("config", "list")),
    Case("config list", USAGE, "invalid profile name", lambda w: w.loom("config", "list", "--profile", "../etc"), says="../etc"),
    Case("config list", USAGE, "broken config file", lambda w: (_corrupt_config(w), w.loom("config", "list"))[1], says="config file"),
    Case("config get", OK, "stored value", _config_set_then_get),
    Case("config get", USAGE, "unknown setting", lambda w: w.loom("config", "get", "colour"), says="colour"),
    Case("config get", NOT_FOUND, "setting without a value", lambda w: w.loom("config", "get", "address"), says="loom config set address"),
    Case("config set", OK, "valid value", lambda w: w.loom("config", "set", "timeout", "12")),
    Case("config set", USAGE, "invalid value", lambda w: w.loom("config", "set", "api_url", "ftp://x"), says="ftp://x"),
    Case("config set", USAGE, "unknown setting", lambda w: w.loom("config", "set", "colour", "red"), says="colour"),
    Case("config set", USAGE, "missing value", lambda w: w.loom("config", "set", "output"), says="VALUE"),
    Case("config unset", OK, "setting not set", lambda w: w.loom("config", "unset", "api_url")),
    Case("config unset", USAGE, "unknown setting", lambda w: w.loom("config", "unset", "colour"), says="colour"),
    Case("config profiles", OK, "default only", lambda w: w.loom("config", "profiles")),
    Case("config profiles", USAGE, "broken config file", lambda w: (_corrupt_config(w), w.loom("config", "profiles"))[1], says="config file"),
    # -- sandbox, demo, completion (sandbox's 0 and 130 are in test_interrupt.py) ---------------
    Case("sandbox", USAGE, "non-loopback host", lambda w: w.loom("sandbox", "--host", "0.0.0.0"), says="--public"),
    Case("sandbox", USAGE, "--fail-rate without --simulate-workers", lambda w: w.loom("sandbox", "--fail-rate", "0.5"), says="--simulate-workers"),
    Case("sandbox", USAGE, "port out of range", lambda w: w.loom("sandbox", "--port", "70000"), says="--port"),
    Case("sandbox", USAGE, "database folder missing", lambda w: w.loom("sandbox", "--port", "0", "--db", str(w.tmp_path / "no" / "s.db")), says="--db"),
    Case("demo", USAGE, "unknown flag", lambda w: w.loom("demo", "--fast"), says="--fast"),
    Case("completion", OK, "bash", lambda w: w.loom("completion", "bash")),
    Case("completion", USAGE, "unknown shell", lambda w: w.loom("completion", "tcsh"), says="tcsh"),
]


def _closed_port_cases() -> list[Case]:
    """Every command that calls the API, pointed at a loopback port that refuses connections."""

    def loom(*args: str, actor_env: str | None = None) -> Callable[[World], subprocess.CompletedProcess[str]]:
        def run(w: World) -> subprocess.CompletedProcess[str]:
            env = {"token": w.creator.token_env, "key": w.creator.key_env}.get(actor_env or "", {})
            words = [w.spec_file() if arg == "{spec}" else arg for arg in args]
            return w.loom("--timeout", "1", *words, env=env, api_url=w.closed_url)

        return run

    rows = [
        ("login", loom("login", actor_env="key")),
        ("whoami", loom("whoami", actor_env="token")),
        ("auth token", loom("auth", "token", actor_env="key")),
        ("jobs list", loom("jobs", "list")),
        ("jobs status", loom("jobs", "status", MISSING_JOB)),
        ("jobs create", loom("jobs", "create", "{spec}", actor_env="token")),
        ("jobs claim", loom("jobs", "claim", MISSING_JOB, actor_env="token")),
        ("jobs cancel", loom("jobs", "cancel", MISSING_JOB, "--yes", actor_env="token")),
        ("jobs watch", loom("jobs", "watch", MISSING_JOB)),
        ("results report", loom("results", "report", MISSING_JOB, "--output-json", "1", actor_env="token")),
        ("results get", loom("results", "get", MISSING_JOB, actor_env="token")),
    ]
    return [Case(command, UNAVAILABLE, "closed port", run, says="could not connect") for command, run in rows]


CLOSED_PORT_CASES = _closed_port_cases()
