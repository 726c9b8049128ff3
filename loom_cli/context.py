"""The per-invocation context that the root callback builds and every command reads from `ctx.obj`.

It holds the global options and lazily builds what commands need: the
resolved settings, the renderer, the credential store and the API client.
Tests replace any of these (environment, stdin, transport, keyring, clock)
by passing them to the constructor, so no command touches module-level state.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, TextIO

import typer

from loom_cli.errors import UsageError

if TYPE_CHECKING:
    import httpx

    from loom_cli.credentials import CredentialStore
    from loom_cli.http import ApiClient
    from loom_cli.output import Renderer
    from loom_cli.settings import Settings


@dataclass
class GlobalOptions:
    profile: str | None = None
    api_url: str | None = None
    output: str | None = None
    quiet: bool = False
    verbose: int = 0
    no_color: bool = False
    timeout: float | None = None


class AppContext:
    def __init__(
        self,
        options: GlobalOptions,
        *,
        env: Mapping[str, str] | None = None,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.options = options
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.transport = transport
        self.clock = clock
        self.sleep = sleep
        # `loom config` creates profiles, so it may name one that is not in the config file yet.
        self.require_known_profile = True

    @staticmethod
    def of(ctx: typer.Context) -> AppContext:
        """Return the AppContext stored by the root callback."""
        obj = ctx.find_root().obj
        if not isinstance(obj, AppContext):
            raise RuntimeError("loom's root callback did not run")
        return obj

    # Output options may also follow the subcommand (`loom jobs list -o json`);
    # those win over the global ones.
    def apply_output_options(self, output: str | None = None, json_: bool = False, quiet: bool = False) -> None:
        if json_ and output and output != "json":
            raise UsageError(f"--json conflicts with --output {output}", hint="give only one of them")
        if json_:
            output = "json"
        if output:
            self.options.output = output
        if quiet:
            self.options.quiet = True
        # The renderer reads the options when it is built; drop one built earlier.
        self.__dict__.pop("renderer", None)

    @property
    def stdin_is_tty(self) -> bool:
        try:
            return self.stdin.isatty()
        except (AttributeError, ValueError):
            return False

    @property
    def color(self) -> bool:
        """Whether stderr/stdout may carry colour: off for --no-color, NO_COLOR and TERM=dumb."""
        if self.options.no_color or "NO_COLOR" in self.env:
            return False
        return self.env.get("TERM") != "dumb"

    @cached_property
    def settings(self) -> Settings:
        from loom_cli.settings import DEFAULT_PROFILE, Settings

        settings = Settings.resolve(
            self.env,
            profile=self.options.profile,
            api_url=self.options.api_url,
            output=self.options.output,
            timeout=self.options.timeout,
        )
        # A mistyped --profile would otherwise send its requests, and the default
        # wallet's signature, to the production API. An API URL given by flag or
        # LOOM_API_URL shows that the profile is meant to be empty.
        api_url_given = bool(self.options.api_url or self.env.get("LOOM_API_URL"))
        if (
            not settings.profile_in_config
            and settings.profile != DEFAULT_PROFILE
            and not api_url_given
            and self.require_known_profile
        ):
            from loom_cli.errors import UsageError
            from loom_cli.settings import ConfigFile

            known = ", ".join(sorted({DEFAULT_PROFILE, *ConfigFile.load(settings.paths).profiles}))
            raise UsageError(
                f"profile {settings.profile!r} has no settings in {settings.paths.config_file} (profiles: {known})",
                hint=f"check the name, or create it with: loom --profile {settings.profile} config set api_url URL",
            )
        return settings

    @property
    def output_format(self) -> str:
        """The format data is printed in: the flag, LOOM_OUTPUT, the profile, else table."""
        return self.options.output or self.settings.output or "table"

    @cached_property
    def renderer(self) -> Renderer:
        from loom_cli.output import Renderer

        return Renderer(
            fmt=self.output_format,
            quiet=self.options.quiet,
            stdout=self.stdout,
            stderr=self.stderr,
            color=self.color,
            now=self.clock,
        )

    @cached_property
    def credentials(self) -> CredentialStore:
        from loom_cli.credentials import CredentialStore

        return CredentialStore.open(self)

    def api(self, *, auth: bool = True) -> ApiClient:
        """Build the API client; with `auth`, requests carry the profile's token (renewed when needed)."""
        from loom_cli.http import ApiClient

        return ApiClient.from_context(self, auth=auth)

    def warn(self, message: str) -> None:
        """Print a warning or hint line on stderr; never on stdout, which carries only data."""
        self.stderr.write(f"{message}\n")
        self.stderr.flush()

    def info(self, message: str) -> None:
        """Print progress on stderr unless --quiet."""
        if not self.options.quiet:
            self.warn(message)

