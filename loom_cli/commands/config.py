"""`loom config`: read and change the per-profile settings in the config file.

These commands read the config file directly instead of through
`AppContext.settings`, so they still work when a stored value is invalid,
and `loom config set` or `unset` can repair it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from loom_cli.context import AppContext
from loom_cli.errors import NotFoundError, UsageError
from loom_cli.options import JsonOption, OutputOption, QuietOption, output_value

CONFIG_HELP = """\
Read and change per-profile settings, kept in a TOML config file.

A value comes from, in order: a flag (--api-url, -o, --timeout), an
environment variable (LOOM_API_URL, LOOM_OUTPUT), the profile in the config
file, or loom's default. The profile is `default` unless --profile or
LOOM_PROFILE names another. Settings: api_url, output, address, timeout.
"""

LIST_EXAMPLES = """\
Examples:

  loom config list                            # every setting and where its value comes from
  loom config list --profile staging -o json
"""

GET_EXAMPLES = """\
Examples:

  loom config get api_url
  curl "$(loom config get api_url)/health"

Exit status: 0 with the value on stdout, 2 for an unknown setting, 4 when the setting has no value.
"""

SET_EXAMPLES = """\
Examples:

  loom config set api_url http://127.0.0.1:8765/v1
  loom config set output json --profile ci
  loom config set address 0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1
"""

UNSET_EXAMPLES = """\
Examples:

  loom config unset api_url                   # back to the default API
  loom config unset address --profile staging
"""

PROFILES_EXAMPLES = """\
Examples:

  loom config profiles
  loom config profiles -q                     # names only
"""

ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        metavar="NAME",
        help="Profile to read or change; the same as `loom --profile NAME`. \\[default: LOOM_PROFILE or default]",
        show_default=False,
    ),
]
KeyArgument = Annotated[str, typer.Argument(metavar="KEY", help="Setting name: api_url, output, address, timeout, retries or retry_budget.", show_default=False)]

config_app = typer.Typer(name="config", help=CONFIG_HELP, no_args_is_help=True)


def register(root: typer.Typer) -> None:
    config_app.command("list", epilog=LIST_EXAMPLES)(list_settings)
    config_app.command("get", epilog=GET_EXAMPLES)(get)
    config_app.command("set", epilog=SET_EXAMPLES)(set_value)
    config_app.command("unset", epilog=UNSET_EXAMPLES)(unset)
    config_app.command("profiles", epilog=PROFILES_EXAMPLES)(profiles)
    root.add_typer(config_app, name="config")


def list_settings(
    ctx: typer.Context,
    profile: ProfileOption = None,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """List the profile's settings, each with its value and where the value comes from."""
    from loom_cli.output import Column

    app = AppContext.of(ctx)
    rows = effective_settings(ctx, profile)
    app.apply_output_options(output_value(output), json_, quiet)

    columns = [Column("KEY", "key"), Column("VALUE", lambda row: _display(row["value"])), Column("SOURCE", "source")]
    app.renderer.records(rows, columns=columns, id_key="key")
    name, config = _load(app, profile)
    app.info(f"Profile {name!r} in {config.paths.config_file}.")


def get(
    ctx: typer.Context,
    key: KeyArgument,
    profile: ProfileOption = None,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Print the value loom uses for one setting: a flag or variable first, then the profile, then the default."""
    app = AppContext.of(ctx)
    _check_known(key)
    row = next(row for row in effective_settings(ctx, profile) if row["key"] == key)
    app.apply_output_options(output_value(output), json_, quiet)

    if row["value"] is None:
        raise NotFoundError(f"{key} is not set in profile {row['profile']!r}", hint=f"set it with: loom config set {key} VALUE")
    if app.output_format == "table" or app.options.quiet:
        app.renderer.text(str(_display(row["value"])))
    else:
        app.renderer.record(row, id_key=None)


def set_value(
    ctx: typer.Context,
    key: KeyArgument,
    value: Annotated[str, typer.Argument(metavar="VALUE", help="New value; it is checked before it is saved.", show_default=False)],
    profile: ProfileOption = None,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Save a setting in the profile, after checking the value."""
    from loom_cli.settings import validate_setting

    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    normalized: Any = validate_setting(key, value)
    if key in ("timeout", "retry_budget"):
        normalized = float(normalized)
    elif key == "retries":
        normalized = int(normalized)
    name, config = _load(app, profile)
    config.profiles.setdefault(name, {})[key] = normalized
    config.save()

    app.info(f"Set {key} = {_display(normalized)} in profile {name!r} ({config.paths.config_file}).")
    if key == "api_url" and not normalized.rstrip("/").endswith("/v1"):
        # Every endpoint is under /v1, so a bare host returns 404 for every command.
        app.warn(f"notice: Loom API URLs end in /v1 (https://api.the-loom.io/v1); if you meant {normalized}/v1, run: loom config set api_url {normalized}/v1")
    override = _override(ctx, key)
    if override:
        app.info(f"Note: {override} overrides this value in this shell.")


def unset(
    ctx: typer.Context,
    key: KeyArgument,
    profile: ProfileOption = None,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Remove a setting from the profile, so loom goes back to its default."""
    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    name, config = _load(app, profile)
    stored = config.profiles.get(name, {})
    if key not in stored:
        _check_known(key)
        app.info(f"{key} was not set in profile {name!r}; nothing to do.")
        return

    del stored[key]
    if not stored:
        del config.profiles[name]
    config.save()
    app.info(f"Removed {key} from profile {name!r} ({config.paths.config_file}).")


def profiles(
    ctx: typer.Context,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """List the profiles in the config file and mark the one in use."""
    from loom_cli.output import Column

    app = AppContext.of(ctx)
    current, config = _load(app, None)
    app.apply_output_options(output_value(output), json_, quiet)

    names = sorted(set(config.profiles) | {current})
    rows = [{"profile": name, "current": name == current} for name in names]
    app.renderer.records(rows, columns=[Column("PROFILE", "profile"), Column("CURRENT", "current")], id_key="profile")


# -- resolving values ---------------------------------------------------------


def effective_settings(ctx: typer.Context, profile: str | None) -> list[dict[str, Any]]:
    """Return one row per setting: key, the value loom uses, its source, and the profile.

    The source is "flag", "env", "profile", "default" or "unset". Values are
    shown as stored, even invalid ones, so a broken profile can be inspected.
    Keys in the profile that loom does not know are listed too.
    """
    from loom_cli.settings import DEFAULT_API_URL, KNOWN_KEYS

    app = AppContext.of(ctx)
    name, config = _load(app, profile)
    stored = config.profile(name)
    options = app.options

    candidates: dict[str, list[tuple[str, Any]]] = {
        "api_url": [(_option_source(ctx, "api_url"), options.api_url), ("profile", stored.get("api_url")), ("default", DEFAULT_API_URL)],
        "output": [(_option_source(ctx, "output"), options.output), ("profile", stored.get("output")), ("default", "table")],
        "address": [("profile", stored.get("address"))],
        "timeout": [(_option_source(ctx, "timeout"), options.timeout), ("profile", stored.get("timeout")), ("default", 30.0)],
        "retries": [("profile", stored.get("retries")), ("default", 4)],
        "retry_budget": [("profile", stored.get("retry_budget")), ("default", 30.0)],
    }
    rows = []
    for key in KNOWN_KEYS:
        value, source = next(((value, source) for source, value in candidates.get(key, []) if value not in (None, "")), (None, "unset"))
        rows.append({"key": key, "value": value, "source": source, "profile": name})
    for key in sorted(set(stored) - set(KNOWN_KEYS)):
        rows.append({"key": key, "value": stored[key], "source": "profile (unknown setting)", "profile": name})
    return rows


# The root options that override a stored setting, with their flag and environment variable.
_OVERRIDES = {
    "api_url": ("--api-url", "LOOM_API_URL"),
    "output": ("--output", "LOOM_OUTPUT"),
    "timeout": ("--timeout", None),
}


def _option_source(ctx: typer.Context, name: str) -> str:
    """Say whether the root option `name` was given as a flag ("flag") or by its variable ("env").

    Typer fills --api-url from LOOM_API_URL itself, so only Click's record of
    the parameter source distinguishes the two.
    """
    source = ctx.find_root().get_parameter_source(name)
    return "env" if source is not None and source.name == "ENVIRONMENT" else "flag"


def _override(ctx: typer.Context, key: str) -> str | None:
    """Name the flag or variable that wins over the profile's `key` in this invocation, if any."""
    if key not in _OVERRIDES or getattr(AppContext.of(ctx).options, key) in (None, ""):
        return None
    flag, variable = _OVERRIDES[key]
    return variable if _option_source(ctx, key) == "env" else flag


def _load(app: AppContext, profile: str | None):
    """Return the chosen profile name (the local --profile, the global one, LOOM_PROFILE, else default) and the config file."""
    from loom_cli.paths import Paths
    from loom_cli.settings import DEFAULT_PROFILE, ConfigFile, validate_profile_name

    name = validate_profile_name(profile or app.options.profile or app.env.get("LOOM_PROFILE") or DEFAULT_PROFILE)
    return name, ConfigFile.load(Paths.from_env(app.env))


def _check_known(key: str) -> None:
    from loom_cli.settings import KNOWN_KEYS

    if key not in KNOWN_KEYS:
        known = ", ".join(KNOWN_KEYS)
        raise UsageError(f"unknown setting {key!r}", hint=f"known settings: {known}")


def _display(value: Any) -> str | None:
    """Format a value for a table or a plain line: 30.0 reads "30", and None stays None (shown as "-")."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
