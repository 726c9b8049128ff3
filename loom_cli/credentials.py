"""Where loom keeps login tokens and encrypted wallet keys.

Secrets go to the OS keyring (service "loom") through the `keyring` package:

    token:<profile>        the profile's login token (JSON of `StoredToken`)
    keystore:<address>     one wallet key, as an encrypted keystore v3 (JSON)
    wallets                the list of stored wallet addresses (keyring cannot enumerate)

Tokens and keys are separate entries, so `loom logout` never touches a key.
When no OS keyring works (none installed, locked, failing, not responding
within a timeout) or the only backend keeps secrets in plain text, the store
uses files in the data folder instead and says so once on stderr:

    <data>/tokens.json                 tokens of every profile
    <data>/keystores/<address>.json    one keystore v3 per wallet

Files are mode 0600 in 0700 folders and are replaced atomically.
`LOOM_KEYRING_BACKEND=file` selects the files without trying the keyring,
`LOOM_KEYRING_BACKEND=keyring` requires the OS keyring (no fallback), and
`LOOM_KEYRING_TIMEOUT` sets how many seconds each keyring call may take.
A wallet key is only ever stored encrypted (keystore v3), in either store.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loom_cli.errors import AuthError, ConflictError, UsageError
from loom_cli.paths import Paths, ensure_private_dir, write_private_file

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

    from loom_cli.context import AppContext

SERVICE = "loom"
WALLET_INDEX_ENTRY = "wallets"
BACKEND_VARIABLE = "LOOM_KEYRING_BACKEND"
TIMEOUT_VARIABLE = "LOOM_KEYRING_TIMEOUT"
BACKEND_CHOICES = ("auto", "file", "keyring")

# Seconds one keyring call may take before the keyring counts as unusable.
# A locked keyring may show an unlock dialog; a slow typist needs LOOM_KEYRING_TIMEOUT.
DEFAULT_KEYRING_TIMEOUT = 5.0
# Seconds `lock()` waits for another loom process; a login holds the lock for a few HTTP requests.
DEFAULT_LOCK_TIMEOUT = 30.0

# Windows Credential Manager stores at most 2,560 bytes per secret (CRED_MAX_CREDENTIAL_BLOB_SIZE),
# and keyring's Windows backend stores text as UTF-16. Other backends get a sanity limit.
WINDOWS_MAX_SECRET_BYTES = 2560
DEFAULT_MAX_SECRET_BYTES = 64 * 1024

_LOCK_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# The lock that guards read-modify-write of the wallet index and tokens.json.
# Public lock names cannot start with "_", so a caller holding lock("login") can still store.
_STORE_LOCK = "_store"

# Records the reason of the last file-store notice shown, so it is not repeated.
NOTICE_MARKER = "file-store-notice"

_BACKEND_NAMES = {
    "keyring.backends.SecretService": "Secret Service keyring",
    "keyring.backends.libsecret": "Secret Service keyring (libsecret)",
    "keyring.backends.kwallet": "KDE Wallet",
    "keyring.backends.Windows": "Windows Credential Manager",
    "keyring.backends.macOS": "macOS Keychain",
}


@dataclass
class StoredToken:
    """A login token and what it belongs to; `expires_at` is RFC 3339 (UTC)."""

    token: str = field(repr=False)
    api_url: str
    address: str
    expires_at: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_data(cls, data: object) -> StoredToken | None:
        """Build a token from parsed JSON, or return None when the shape is wrong."""
        if not isinstance(data, dict):
            return None
        values = {name: data.get(name) for name in ("token", "api_url", "address", "expires_at")}
        if not all(isinstance(value, str) and value for value in values.values()):
            return None
        return cls(**values)


class KeyringUnavailable(Exception):
    """The OS keyring cannot be used; the message is a short reason for the notice."""


def _first_line(exc: BaseException) -> str:
    from loom_cli.text import escape_control

    text = str(exc).strip().splitlines()
    reason = text[0] if text else type(exc).__name__
    return escape_control(reason[:200])


def backend_label(backend: object) -> str:
    """Name a keyring backend the way users know it: "Secret Service keyring", "macOS Keychain"."""
    module = type(backend).__module__
    for prefix, label in _BACKEND_NAMES.items():
        if module == prefix or module.startswith(prefix + "."):
            return label
    name = getattr(backend, "name", None)
    return name if isinstance(name, str) and name else f"{module}.{type(backend).__qualname__}"


def _call_with_timeout(function: Callable[[], Any], timeout: float, what: str) -> Any:
    """Run `function` in a daemon thread and return its result, or raise KeyringUnavailable.

    A keyring call can block for ever (a locked keyring waiting on an unlock
    dialog, a D-Bus peer that never responds). The stuck thread is left behind
    as a daemon thread, so it cannot keep the process alive.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - any failure of a backend makes it unusable
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="loom-keyring", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise KeyringUnavailable(f"{what} timed out after {timeout:g} s")
    error = outcome.get("error")
    if isinstance(error, KeyringUnavailable):
        raise error
    if type(error).__name__ == "KeyringLocked":
        raise KeyringUnavailable(f"{what} is locked") from error
    if error is not None:
        raise KeyringUnavailable(f"{what} failed: {_first_line(error)}") from error
    return outcome.get("value")


def _select_backend(factory: Callable[[], KeyringBackend]) -> KeyringBackend:
    """Return the keyring backend to use, or raise KeyringUnavailable saying why none fits.

    The chainer backend is replaced by its highest-priority member, so a write
    never lands in a plaintext backend further down the chain.
    """
    from keyring.backends import chainer, fail, null

    backend = factory()
    if isinstance(backend, chainer.ChainerBackend):
        members = list(backend.backends)
        if not members:
            raise KeyringUnavailable("no keyring backend is installed")
        backend = members[0]
    if isinstance(backend, fail.Keyring | null.Keyring):
        raise KeyringUnavailable("keyring found no Secret Service, Keychain or Credential Manager")

    label = backend_label(backend)
    if type(backend).__module__.startswith("keyrings.alt"):
        raise KeyringUnavailable(f"{label} keeps secrets in a plain file")
    try:
        priority = float(backend.priority)
    except Exception as exc:  # noqa: BLE001 - keyring backends report "not viable" by raising here
        raise KeyringUnavailable(f"{label} is not usable: {_first_line(exc)}") from exc
    # keyring itself recommends only backends of priority >= 1; lower ones are
    # plaintext or otherwise weak stand-ins.
    if priority < 1:
        raise KeyringUnavailable(f"{label} is not a recommended backend (priority {priority:g})")
    return backend


def _max_secret_bytes(backend: object) -> int:
    module = type(backend).__module__
    if module == "keyring.backends.Windows" or module.startswith("keyring.backends.Windows."):
        return WINDOWS_MAX_SECRET_BYTES
    return DEFAULT_MAX_SECRET_BYTES


def _secret_size(backend: object, value: str) -> int:
    if _max_secret_bytes(backend) == WINDOWS_MAX_SECRET_BYTES:
        return len(value.encode("utf-16-le"))
    return len(value.encode("utf-8"))


class _KeyringEntries:
    """Entries of service "loom" in one OS keyring backend, every call bounded by a timeout."""

    def __init__(self, backend: KeyringBackend, timeout: float) -> None:
        self.backend = backend
        self.timeout = timeout
        self.label = backend_label(backend)

    def _run(self, function: Callable[[], Any]) -> Any:
        try:
            return _call_with_timeout(function, self.timeout, self.label)
        except KeyringUnavailable as exc:
            raise AuthError(
                f"cannot use the OS keyring: {exc}",
                hint=f"retry, raise {TIMEOUT_VARIABLE} (seconds), or set {BACKEND_VARIABLE}=file to keep credentials in files",
            ) from exc

    def get(self, name: str) -> str | None:
        return self._run(lambda: self.backend.get_password(SERVICE, name))

    def set(self, name: str, value: str) -> None:
        limit = _max_secret_bytes(self.backend)
        size = _secret_size(self.backend, value)
        if size > limit:
            # Exit 3, like every other keyring failure: the login or import could not be stored.
            raise AuthError(
                f"the {name.split(':')[0]} entry is {size} bytes, more than the {self.label} accepts ({limit} bytes)",
                hint=f"set {BACKEND_VARIABLE}=file to keep credentials in files instead",
            )
        self._run(lambda: self.backend.set_password(SERVICE, name, value))

    def delete(self, name: str) -> bool:
        from keyring.errors import PasswordDeleteError

        def delete() -> bool:
            try:
                self.backend.delete_password(SERVICE, name)
            except PasswordDeleteError:
                return False
            return True

        return self._run(delete)


def _load_json(raw: str | bytes, where: str, hint: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AuthError(f"{where} is corrupt (invalid JSON: {_first_line(exc)})", hint=hint) from exc


def _read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError as exc:
        raise AuthError(f"credentials file {path} is a folder", hint=f"move {path} away") from exc
    except OSError as exc:
        raise AuthError(f"cannot read credentials file {path}: {exc.strerror}", hint=f"check the permissions of {path}") from exc


class CredentialStore:
    """Login tokens per profile and encrypted wallet keys, in the OS keyring or in private files.

    The backend is chosen on first use, so commands that never touch a
    credential never wait for the keyring.
    """

    def __init__(
        self,
        paths: Paths,
        *,
        mode: str = "auto",
        backend_factory: Callable[[], KeyringBackend] | None = None,
        timeout: float = DEFAULT_KEYRING_TIMEOUT,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        if mode not in BACKEND_CHOICES:
            raise UsageError(f"invalid {BACKEND_VARIABLE} {mode!r}", hint="use auto, file or keyring")
        self.paths = paths
        self.mode = mode
        self.timeout = timeout
        self.lock_timeout = lock_timeout
        self._backend_factory = backend_factory
        self._warn = warn or (lambda message: None)
        self._entries: _KeyringEntries | None = None
        self._resolved = False
        self.fallback_reason: str | None = None

    @classmethod
    def open(cls, app: AppContext) -> CredentialStore:
        return cls.from_env(app.env, warn=app.warn)

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, warn: Callable[[str], None] | None = None) -> CredentialStore:
        mode = (env.get(BACKEND_VARIABLE) or "auto").strip().lower()
        timeout = DEFAULT_KEYRING_TIMEOUT
        raw_timeout = env.get(TIMEOUT_VARIABLE)
        if raw_timeout:
            try:
                timeout = float(raw_timeout)
            except ValueError:
                timeout = -1.0
            if not 0 < timeout <= 600:
                raise UsageError(f"invalid {TIMEOUT_VARIABLE} {raw_timeout!r}", hint="give a number of seconds between 0 and 600")
        return cls(Paths.from_env(env), mode=mode, timeout=timeout, warn=warn)

    # -- choosing the backend -------------------------------------------------

    def _keyring(self) -> _KeyringEntries | None:
        """Return the keyring entries to use, or None for the file store (deciding on first call)."""
        if self._resolved:
            return self._entries
        self._resolved = True
        if self.mode == "file":
            return None

        factory = self._backend_factory
        if factory is None:
            import keyring

            factory = keyring.get_keyring

        try:
            backend = _call_with_timeout(lambda: _select_backend(factory), self.timeout, "the OS keyring")
            # A read shows whether the keyring is unlocked and responding.
            _call_with_timeout(lambda: backend.get_password(SERVICE, WALLET_INDEX_ENTRY), self.timeout, backend_label(backend))
        except KeyringUnavailable as exc:
            reason = str(exc)
            if self.mode == "keyring":
                raise AuthError(
                    f"no usable OS keyring: {reason}",
                    hint=f"unlock or install a keyring, or unset {BACKEND_VARIABLE}=keyring to allow files",
                ) from exc
            self.fallback_reason = reason
            self._notify_file_fallback(reason)
            return None

        self._entries = _KeyringEntries(backend, self.timeout)
        return self._entries

    def _notify_file_fallback(self, reason: str) -> None:
        """Print the fallback notice once per data folder and reason, not on every command.

        A marker file records the reason last shown, so a CI job running loom
        fifty times prints the notice once, and again only if the reason changes.
        """
        marker = self.paths.data_dir / NOTICE_MARKER
        try:
            if marker.read_text(encoding="utf-8") == reason:
                return
        except (OSError, UnicodeDecodeError):
            pass
        self._warn(
            f"notice: no usable OS keyring ({reason}); keeping credentials in files under "
            f"{self.paths.data_dir} (mode 0600)\n"
            f"hint: set {BACKEND_VARIABLE}=file to use files without this notice"
        )
        try:
            write_private_file(marker, reason.encode("utf-8"))
        except OSError:
            # Without the marker the notice shows again next time, which is harmless.
            pass

    @property
    def uses_keyring(self) -> bool:
        return self._keyring() is not None

    @property
    def location(self) -> str:
        """Where tokens are kept, for people: "Secret Service keyring" or "file <path>"."""
        entries = self._keyring()
        return entries.label if entries else f"file {self.tokens_path}"

    @property
    def wallet_location(self) -> str:
        """Where wallet keys are kept, for people: the keyring's name or "folder <path>"."""
        entries = self._keyring()
        return entries.label if entries else f"folder {self.keystore_dir}"

    @property
    def tokens_path(self) -> Path:
        return self.paths.data_dir / "tokens.json"

    @property
    def keystore_dir(self) -> Path:
        return self.paths.data_dir / "keystores"

    def _private_folder(self, name: str) -> Path:
        """Create the data folder and its subfolder `name`, both 0700.

        `Path.mkdir(parents=True)` gives the parents it creates the umask's
        mode (often 0755), so the data folder is created on its own first.
        """
        ensure_private_dir(self.paths.data_dir)
        return ensure_private_dir(self.paths.data_dir / name)

    # -- locking --------------------------------------------------------------

    @contextmanager
    def lock(self, name: str = "credentials") -> Iterator[None]:
        """Hold a cross-process lock named `name` (a file in the data folder) for the `with` block."""
        from filelock import FileLock, Timeout

        if not (_LOCK_NAME.match(name) or name == _STORE_LOCK):
            raise ValueError(f"invalid lock name {name!r}")
        try:
            folder = self._private_folder("locks")
        except OSError as exc:
            raise AuthError(f"cannot create the lock folder in {self.paths.data_dir}: {exc.strerror}") from exc
        path = folder / f"{name}.lock"
        file_lock = FileLock(path, timeout=self.lock_timeout, mode=0o600)
        try:
            file_lock.acquire()
        except Timeout as exc:
            raise ConflictError(
                f"another loom process has held the lock {path} for more than {self.lock_timeout:g} s",
                hint="wait for the other loom command to finish, then retry",
            ) from exc
        except OSError as exc:
            raise AuthError(f"cannot take the lock {path}: {exc.strerror}", hint=f"check the permissions of {folder}") from exc
        try:
            yield
        finally:
            file_lock.release()

    # -- tokens ---------------------------------------------------------------

    def get_token(self, profile: str) -> StoredToken | None:
        entries = self._keyring()
        if entries is not None:
            raw = entries.get(f"token:{profile}")
            if raw is None:
                return None
            where = f"the token of profile {profile!r} in the {entries.label}"
            return self._parse_token(_load_json(raw, where, self._token_hint(profile)), where, profile)

        tokens = self._read_tokens_file()
        if profile not in tokens:
            return None
        return self._parse_token(tokens[profile], f"the token of profile {profile!r} in {self.tokens_path}", profile)

    def set_token(self, profile: str, token: StoredToken) -> None:
        entries = self._keyring()
        if entries is not None:
            entries.set(f"token:{profile}", token.to_json())
            return
        with self.lock(_STORE_LOCK):
            tokens = self._read_tokens_file()
            tokens[profile] = asdict(token)
            write_private_file(self.tokens_path, (json.dumps(tokens, indent=2, sort_keys=True) + "\n").encode("utf-8"))

    def delete_token(self, profile: str) -> bool:
        entries = self._keyring()
        if entries is not None:
            return entries.delete(f"token:{profile}")
        with self.lock(_STORE_LOCK):
            try:
                tokens = self._read_tokens_file()
            except AuthError as exc:
                # A corrupt file cannot be edited; dropping it only costs other profiles a new login.
                try:
                    self.tokens_path.unlink()
                except OSError:
                    raise exc from None
                self._warn(f"warning: removed the corrupt {self.tokens_path}; every profile must log in again")
                return True
            if profile not in tokens:
                return False
            del tokens[profile]
            write_private_file(self.tokens_path, (json.dumps(tokens, indent=2, sort_keys=True) + "\n").encode("utf-8"))
            return True

    def _token_hint(self, profile: str) -> str:
        flag = "" if profile == "default" else f" --profile {profile}"
        return f"run `loom{flag} logout` to forget it, then `loom{flag} login`"

    def _parse_token(self, data: object, where: str, profile: str) -> StoredToken:
        token = StoredToken.from_data(data)
        if token is None:
            raise AuthError(f"{where} is corrupt (expected token, api_url, address and expires_at)", hint=self._token_hint(profile))
        return token

    def _read_tokens_file(self) -> dict[str, Any]:
        raw = _read_file(self.tokens_path)
        if raw is None:
            return {}
        hint = f"run `loom logout` (it removes the corrupt file) or delete {self.tokens_path}, then `loom login`"
        data = _load_json(raw, f"credentials file {self.tokens_path}", hint)
        if not isinstance(data, dict):
            raise AuthError(f"credentials file {self.tokens_path} is corrupt (expected a JSON object)", hint=hint)
        return data

    # -- wallets --------------------------------------------------------------

    def list_wallets(self) -> list[str]:
        """Return the stored wallet addresses (checksummed), oldest first."""
        entries = self._keyring()
        if entries is not None:
            return self._read_index(entries)

        from loom_cli.addresses import is_valid_address, to_checksum

        try:
            paths = list(self.keystore_dir.iterdir())
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise AuthError(f"cannot list {self.keystore_dir}: {exc.strerror}", hint=f"check the permissions of {self.keystore_dir}") from exc

        # Oldest first, like the keyring's index; a file removed meanwhile is skipped.
        found: list[tuple[int, str]] = []
        for path in paths:
            if path.suffix != ".json" or not is_valid_address(path.stem):
                continue
            try:
                found.append((path.stat().st_mtime_ns, to_checksum(path.stem)))
            except FileNotFoundError:
                continue
        return [address for _, address in sorted(found)]

    def get_keystore(self, address: str) -> dict | None:
        """Return the encrypted keystore v3 stored for `address`, or None."""
        from loom_cli.addresses import normalize_address

        address = normalize_address(address)
        entries = self._keyring()
        if entries is not None:
            raw = entries.get(f"keystore:{address}")
            where = f"the keystore of wallet {address} in the {entries.label}"
        else:
            path = self.keystore_dir / f"{address}.json"
            raw = _read_file(path)
            where = f"keystore file {path}"
        if raw is None:
            return None

        hint = f"restore the wallet from a backup: `loom wallet remove {address}`, then `loom wallet import --keystore FILE`"
        data = _load_json(raw, where, hint)
        if not isinstance(data, dict) or not isinstance(data.get("crypto"), dict):
            raise AuthError(f"{where} is corrupt (not a keystore v3 object)", hint=hint)
        return data

    def set_keystore(self, address: str, keystore: dict) -> None:
        """Store an encrypted keystore v3 for `address`, replacing any earlier one."""
        from loom_cli.addresses import normalize_address
        from loom_cli.wallet import normalize_keystore

        address = normalize_address(address)
        keystore = normalize_keystore(keystore, source=f"for wallet {address}")
        keystore["address"] = keystore["address"] or address[2:].lower()
        if keystore["address"] != address[2:].lower():
            raise UsageError(f"the keystore holds wallet 0x{keystore['address']}, not {address}")
        text = json.dumps(keystore, separators=(",", ":"), sort_keys=True)

        entries = self._keyring()
        with self.lock(_STORE_LOCK):
            if entries is None:
                self._private_folder("keystores")
                write_private_file(self.keystore_dir / f"{address}.json", (text + "\n").encode("utf-8"))
                return
            # Keystore first, index second: a failure in between leaves a key
            # that is stored but unlisted, never a listed wallet without a key.
            entries.set(f"keystore:{address}", text)
            index = self._read_index(entries)
            if address not in index:
                entries.set(WALLET_INDEX_ENTRY, json.dumps([*index, address]))

    def delete_keystore(self, address: str) -> bool:
        from loom_cli.addresses import normalize_address

        address = normalize_address(address)
        entries = self._keyring()
        with self.lock(_STORE_LOCK):
            if entries is None:
                try:
                    (self.keystore_dir / f"{address}.json").unlink()
                except FileNotFoundError:
                    return False
                return True
            removed = entries.delete(f"keystore:{address}")
            index = self._read_index(entries)
            if address in index:
                entries.set(WALLET_INDEX_ENTRY, json.dumps([item for item in index if item != address]))
                removed = True
            return removed

    def _read_index(self, entries: _KeyringEntries) -> list[str]:
        from loom_cli.addresses import is_valid_address, to_checksum

        raw = entries.get(WALLET_INDEX_ENTRY)
        if raw is None:
            return []
        where = f"the wallet list (entry {WALLET_INDEX_ENTRY!r} of service {SERVICE!r}) in the {entries.label}"
        hint = f"delete it with `python -m keyring del {SERVICE} {WALLET_INDEX_ENTRY}`, then import your wallets again"
        data = _load_json(raw, where, hint)
        if not isinstance(data, list) or not all(isinstance(item, str) and is_valid_address(item) for item in data):
            raise AuthError(f"{where} is corrupt (expected a list of addresses)", hint=hint)
        return [to_checksum(item) for item in data]
