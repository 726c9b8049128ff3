"""Errors raised by loom and the exit code each one maps to.

Every failure a user can cause or meet is a `LoomError`; `loom_cli.app.main`
turns it into one line on stderr and its `exit_code`. Anything else that
escapes a command is a bug and exits 1.

    LoomError                      exit 1  (base; a bug when raised bare)
    ├── UsageError                 exit 2  bad flag, invalid input, unreadable file
    │   └── SpecValidationError    exit 2  job spec failed validation (lists every problem)
    ├── AuthError                  exit 3  not logged in, login failed, token expired
    │   └── PromptRequired         exit 3  a secret is needed but stdin is not a terminal
    ├── NotFoundError              exit 4  404 from the API, unknown wallet or profile
    ├── ConflictError              exit 5  409 from the API, or 403 forbidden
    └── ApiUnavailableError        exit 6  connection failed, retries used up, or an
                                           answer that breaks the API contract
"""

from __future__ import annotations

import errno
from enum import IntEnum
from typing import Any, NoReturn


class ExitCode(IntEnum):
    """Process exit codes; scripts rely on these, so they only change on purpose."""

    OK = 0
    BUG = 1
    USAGE = 2
    AUTH = 3
    NOT_FOUND = 4
    CONFLICT = 5
    API_UNAVAILABLE = 6
    JOB_FAILED = 10
    JOB_CANCELLED = 11
    WATCH_TIMEOUT = 12
    INTERRUPTED = 130


class LoomError(Exception):
    """Base of every error loom reports to the user.

    `message` is one sentence naming the value at fault; `hint` is the next
    thing to try (a command or a variable); `request_id` is the API's
    `X-Request-Id` when the error came from a response.
    """

    exit_code: ExitCode = ExitCode.BUG

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        request_id: str | None = None,
        api_code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.request_id = request_id
        self.api_code = api_code
        self.details = details or {}

    def render(self) -> str:
        """Format the error as the single line printed on stderr."""
        text = f"error: {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


class UsageError(LoomError):
    exit_code = ExitCode.USAGE


class SpecValidationError(UsageError):
    """A job spec broke one or more rules; `problems` contains one line for each."""

    def __init__(self, message: str, problems: list[str], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.problems = problems

    def render(self) -> str:
        lines = [f"error: {self.message}"]
        lines.extend(f"  {problem}" for problem in self.problems)
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


class AuthError(LoomError):
    exit_code = ExitCode.AUTH


class PromptRequired(AuthError):
    """A prompt would be needed, but stdin is not a terminal."""


class NotFoundError(LoomError):
    exit_code = ExitCode.NOT_FOUND


class ConflictError(LoomError):
    exit_code = ExitCode.CONFLICT


class ApiUnavailableError(LoomError):
    exit_code = ExitCode.API_UNAVAILABLE


class WatchOutcome(Exception):
    """Ends `jobs watch` with a non-zero outcome code that is not an error."""

    def __init__(self, exit_code: ExitCode) -> None:
        super().__init__(exit_code.name)
        self.exit_code = exit_code


# errno values of a write that failed because of where the output goes (a full
# disk, /dev/full, a read-only or failing device), not because of loom.
WRITE_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG", "EIO", "EROFS") if hasattr(errno, name)
)


def exit_on_write_error(exc: OSError) -> NoReturn:
    """Report a failed write in one line on stderr, discard the rest of stdout and exit 1.

    An OSError whose errno is not in WRITE_ERRNOS is a bug, and is raised again.
    """
    import os
    import sys

    if exc.errno not in WRITE_ERRNOS:
        raise exc

    target = exc.filename if isinstance(exc.filename, str) else "the output"
    try:
        sys.stderr.write(f"error: cannot write {target}: {exc.strerror or exc}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
    # Send what Python still buffers for stdout to /dev/null, so its last flush cannot fail again.
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    sys.exit(int(ExitCode.BUG))
