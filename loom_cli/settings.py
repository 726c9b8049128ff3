"""Per-profile settings in a TOML file, resolved as flag > environment > profile > default.

The file holds one table per profile:

    [profiles.default]
    api_url = "https://api.the-loom.io/v1"
    output = "json"
    address = "0x..."
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loom_cli.errors import UsageError
from loom_cli.paths import Paths, write_private_file

DEFAULT_API_URL = "https://api.the-loom.io/v1"
DEFAULT_PROFILE = "default"
OUTPUT_FORMATS = ("table", "json", "yaml", "jsonl")
PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# Settings a user may store with `loom config set`, with a one-line description each.
KNOWN_KEYS: dict[str, str] = {
    "api_url": "base URL of the Loom API",
    "output": "default output format: table, json, yaml or jsonl",
    "address": "wallet address used by `loom login`",
    "timeout": "per-request timeout in seconds",
    "retries": "attempts per request on connection errors, timeouts, 429, 502, 503 and 504 (1-10)",
    "retry_budget": "seconds of backoff between attempts, in total, for one request (0-600)",
}


def validate_profile_name(name: str) -> str:
    if not PROFILE_NAME.match(name):
        raise UsageError(
            f"invalid profile name {name!r}",
            hint="use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return name


def validate_setting(key: str, value: str) -> str:
    """Check one `config set` value and return it normalised."""
    if key not in KNOWN_KEYS:
        known = ", ".join(sorted(KNOWN_KEYS))
        raise UsageError(f"unknown setting {key!r}", hint=f"known settings: {known}")
    if key == "api_url":
        return normalize_api_url(value)
    if key == "output" and value not in OUTPUT_FORMATS:
        raise UsageError(f"invalid output format {value!r}", hint="use table, json, yaml or jsonl")
    if key == "timeout":
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not 0 < seconds <= 3600:
            raise UsageError(f"invalid timeout {value!r}", hint="give a number of seconds between 0 and 3600")
    if key == "retries" and not (value.isdigit() and 1 <= int(value) <= 10):
        raise UsageError(f"invalid retries {value!r}", hint="give a whole number of attempts from 1 to 10")
    if key == "retry_budget":
        try:
            budget = float(value)
        except ValueError:
            budget = -1.0
        if not 0 <= budget <= 600:
            raise UsageError(f"invalid retry_budget {value!r}", hint="give a number of seconds from 0 to 600")
    if key == "address":
        from loom_cli.addresses import normalize_address

        return normalize_address(value)
    return value


def normalize_api_url(value: str) -> str:
    """Check that `value` is an http(s) URL with a host and drop its trailing slash."""
    import httpx

    try:
        url = httpx.URL(value.strip())
    except (httpx.InvalidURL, TypeError) as exc:
        raise UsageError(f"invalid API URL {value!r}: {exc}", hint="use a URL such as https://api.the-loom.io/v1") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise UsageError(f"invalid API URL {value!r}", hint="use an http:// or https:// URL such as https://api.the-loom.io/v1")
    return str(url).rstrip("/")


@dataclass
class ConfigFile:
    """The parsed config file; `profiles` maps profile name to its settings."""

    paths: Paths
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, paths: Paths) -> ConfigFile:
        path = paths.config_file
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(paths)
        except OSError as exc:
            raise UsageError(f"cannot read config file {path}: {exc.strerror}") from exc
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(
                f"invalid config file {path}: {exc}",
                hint=f"fix or delete {path}",
            ) from exc
        profiles = data.get("profiles", {})
        if not isinstance(profiles, dict) or not all(isinstance(v, dict) for v in profiles.values()):
            raise UsageError(f"invalid config file {path}: [profiles] must hold one table per profile", hint=f"fix or delete {path}")
        return cls(paths, profiles)

    def save(self) -> None:
        import tomli_w

        text = tomli_w.dumps({"profiles": self.profiles})
        write_private_file(self.paths.config_file, text.encode("utf-8"))

    def profile(self, name: str) -> dict[str, Any]:
        return dict(self.profiles.get(name, {}))


@dataclass(frozen=True)
class Settings:
    """The effective settings for one invocation, after precedence is applied."""

    paths: Paths
    profile: str
    api_url: str
    output: str | None
    timeout: float
    address: str | None
    # Attempts per request and seconds of backoff in total; see ApiClient.
    retries: int = 4
    retry_budget: float = 30.0
    # False when the profile has no table in the config file (new, or a typo).
    profile_in_config: bool = True

    @classmethod
    def resolve(
        cls,
        env: Mapping[str, str],
        *,
        profile: str | None = None,
        api_url: str | None = None,
        output: str | None = None,
        timeout: float | None = None,
    ) -> Settings:
        paths = Paths.from_env(env)
        name = validate_profile_name(profile or env.get("LOOM_PROFILE") or DEFAULT_PROFILE)
        config = ConfigFile.load(paths)
        stored = config.profile(name)

        if api_url:
            url = normalize_api_url(api_url)
        elif env.get("LOOM_API_URL"):
            url = normalize_api_url(env["LOOM_API_URL"])
        elif stored.get("api_url"):
            url = normalize_api_url(str(stored["api_url"]))
        else:
            url = DEFAULT_API_URL

        fmt = output or env.get("LOOM_OUTPUT") or stored.get("output")
        if fmt is not None and fmt not in OUTPUT_FORMATS:
            raise UsageError(f"invalid output format {fmt!r}", hint="use table, json, yaml or jsonl (check LOOM_OUTPUT and `loom config get output`)")

        seconds = timeout if timeout is not None else _stored_number(stored, "timeout", 30.0, paths)
        return cls(
            paths=paths,
            profile=name,
            api_url=url,
            output=fmt,
            timeout=seconds,
            address=stored.get("address"),
            retries=int(_stored_number(stored, "retries", 4, paths)),
            retry_budget=_stored_number(stored, "retry_budget", 30.0, paths),
            profile_in_config=name in config.profiles,
        )


def _stored_number(stored: Mapping[str, Any], key: str, default: float, paths: Paths) -> float:
    """Read a numeric setting from the profile, checked as `config set` checks it."""
    if key not in stored:
        return default
    raw = str(stored[key])
    try:
        validate_setting(key, raw)
    except UsageError as exc:
        raise UsageError(exc.message, hint=f"fix it with: loom config set {key} VALUE (in {paths.config_file})") from exc
    return float(raw)
