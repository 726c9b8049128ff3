"""Print the help for `loom`, `loom --help` and `loom -h` from a cached render, without importing Typer.

The root help is the page people and scripts ask for most, and building it
through Typer and rich costs about ten times the interpreter's start-up. Its
text depends only on loom's code, the Typer and rich in use, the terminal
(width, colour, encoding) and a few environment variables, so it is rendered
once through Typer, as before, and replayed while none of those change.

Every input that can change the render is part of the cache key, kept in full
in the cache file, and compared on each read; a file that does not match, or
cannot be read, means a normal render. The key holds no values of variables
outside a fixed list of terminal and colour settings, so no secret can reach it.
Nothing in this module may fail a command: any error means "no cache".
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TextIO

# Bumped when the file layout below changes.
_FORMAT = "loom-help-cache 1"

# The root invocations whose output is the root help: bare `loom` (which also
# exits 2, as Click does for a group without a command) and the help flags.
_HELP_ARGS = ((), ("--help",), ("-h",))

# Same as loom_cli.commands.completion.COMPLETE_VAR, which imports Typer.
COMPLETE_VAR = "_LOOM_COMPLETE"

# Environment variables that Typer, Click or rich read while rendering help.
_RENDER_ENV = (
    "TERM",
    "COLORTERM",
    "NO_COLOR",
    "FORCE_COLOR",
    "PY_COLORS",
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "COLUMNS",
    "LINES",
    "JUPYTER_COLUMNS",
    "JUPYTER_LINES",
    "TERMINAL_WIDTH",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "UNICODE_VERSION",
    "GITHUB_ACTIONS",
    "DATABRICKS_RUNTIME_VERSION",
    "TYPER_USE_RICH",
    "PYTHONIOENCODING",
    "PYTHONUTF8",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
)
_RENDER_ENV_PREFIXES = ("_TYPER_", "TYPER_", "RICH_")

# The libraries whose code shapes the render. A reinstall replaces their files, which changes their stamps.
_RENDER_LIBRARIES = ("typer", "rich")

# Old entries beyond this many (one per terminal size and colour mode) are removed.
_MAX_ENTRIES = 16


def cache_dir(env: Mapping[str, str]) -> str:
    """Return loom's cache folder, the same one platformdirs gives."""
    override = env.get("LOOM_CONFIG_DIR")
    if override:
        return os.path.join(os.path.expanduser(override), "cache")
    if sys.platform.startswith("linux"):
        # platformdirs' XDG rule, spelled out here because importing
        # platformdirs costs more than printing the whole cached page.
        base = env.get("XDG_CACHE_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".cache")
        return os.path.join(base, "loom")
    import platformdirs

    return platformdirs.user_cache_dir("loom", appauthor=False)


def _file_stamp(path: str) -> str:
    try:
        status = os.stat(path)
    except OSError:
        return f"{path}:-"
    return f"{path}:{status.st_ino}:{status.st_size}:{status.st_mtime_ns}"


def _source_stamps() -> list[str]:
    """Stamp every loom source file, so an edited editable install renders anew."""
    root = os.path.dirname(os.path.abspath(__file__))
    stamps = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if name != "__pycache__")
        stamps.extend(_file_stamp(os.path.join(folder, name)) for name in sorted(files) if name.endswith(".py"))
    return stamps


def _library_stamps() -> list[str]:
    from importlib.util import find_spec

    stamps = []
    for name in _RENDER_LIBRARIES:
        spec = find_spec(name)
        origin = spec.origin if spec is not None else None
        stamps.append(f"{name}={_file_stamp(origin) if origin else '-'}")
    return stamps


def _terminal_state() -> list[str]:
    state = []
    for fd in (0, 1, 2):
        try:
            tty = os.isatty(fd)
        except OSError:
            tty = False
        try:
            columns, lines = os.get_terminal_size(fd)
            size = f"{columns}x{lines}"
        except (OSError, ValueError):
            size = "-"
        state.append(f"fd{fd}:tty={int(tty)}:size={size}")
    state.append(f"encoding={getattr(sys.stdout, 'encoding', None)}")
    return state


def _render_env(env: Mapping[str, str]) -> list[str]:
    names = set(_RENDER_ENV)
    names.update(name for name in env if name.startswith(_RENDER_ENV_PREFIXES))
    return [f"{name}={env[name]!r}" for name in sorted(names) if name in env]


def invocation_key(args: tuple[str, ...], env: Mapping[str, str]) -> str:
    """Everything the root help's bytes depend on, one item a line."""
    from loom_cli import __version__

    # `-h` and `--help` print the same page, so they share an entry.
    lines = [
        _FORMAT,
        f"args={'--help' if args == ('-h',) else ' '.join(args)}",
        f"loom={__version__}",
        f"python={sys.executable}:{sys.version}",
        f"platform={sys.platform}",
        *_library_stamps(),
        *_source_stamps(),
        *_terminal_state(),
        *_render_env(env),
    ]
    return "\n".join(line.replace("\n", " ") for line in lines)


class HelpCache:
    """One cache entry: the root help for these arguments in this terminal."""

    def __init__(self, args: tuple[str, ...], folder: str, key: str) -> None:
        self.args = args
        self.folder = folder
        self.key = key
        self.path = os.path.join(folder, f"help-{zlib.crc32(key.encode('utf-8')):08x}.txt")

    @classmethod
    def for_invocation(cls, args: list[str], env: Mapping[str, str]) -> HelpCache | None:
        """Return the entry for `args`, or None when they are not a root-help call or nothing can be cached."""
        # A shell asking for completions runs a bare `loom` with this variable set.
        # With stdout or stderr closed (`loom -h >&-`), Python sets them to None, and Typer handles that.
        if tuple(args) not in _HELP_ARGS or COMPLETE_VAR in env or sys.stdout is None or sys.stderr is None:
            return None
        # On Windows, rich also asks the console which features it has, and the key cannot see that.
        if sys.platform == "win32":
            return None
        try:
            return cls(tuple(args), cache_dir(env), invocation_key(tuple(args), env))
        except Exception:
            return None

    def read(self) -> tuple[int, str] | None:
        """Return the stored (exit code, text), or None unless the entry matches this key exactly."""
        try:
            with open(self.path, encoding="utf-8", newline="") as handle:
                content = handle.read()
        except (OSError, UnicodeDecodeError):
            return None
        header, separator, text = content.partition("\n\n")
        if not separator:
            return None
        first, _, rest = header.partition("\n")
        code_field, _, length_field = first.partition(" ")
        try:
            code, length = int(code_field), int(length_field)
        except ValueError:
            return None
        if rest != self.key or len(text) != length:
            return None
        return code, text

    def write(self, code: int, text: str) -> None:
        """Store the render, unless the cache folder cannot be written to."""
        content = f"{code} {len(text)}\n{self.key}\n\n{text}"
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(content)
            os.replace(tmp, self.path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return
        self._prune()

    def _prune(self) -> None:
        try:
            entries = [entry for entry in os.scandir(self.folder) if entry.name.startswith("help-") and entry.name.endswith(".txt")]
            if len(entries) <= _MAX_ENTRIES:
                return
            entries.sort(key=lambda entry: entry.stat().st_mtime_ns)
            for entry in entries[: len(entries) - _MAX_ENTRIES]:
                os.unlink(entry.path)
        except OSError:
            pass

    @contextmanager
    def recording(self) -> Iterator[None]:
        """Record what the normal render prints, and store it if the run was a clean help page.

        Only a render that wrote nothing to stderr and ended with the exit code
        the arguments call for (0 for the help flags, 2 for a bare `loom`) is kept.
        """
        stdout = _Recorder(sys.stdout)
        stderr = _Recorder(sys.stderr)
        sys.stdout, sys.stderr = stdout, stderr  # type: ignore[assignment]
        code: object = 0
        try:
            yield
        except SystemExit as exc:
            code = exc.code if exc.code is not None else 0
            raise
        except BaseException:
            code = None
            raise
        finally:
            sys.stdout, sys.stderr = stdout.target, stderr.target
            expected = 2 if not self.args else 0
            if code == expected and stdout.clean and stderr.clean and not stderr.parts and stdout.parts:
                self.write(expected, "".join(stdout.parts))


class _Recorder:
    """A text stream that passes everything to `target` and keeps a copy."""

    def __init__(self, target: TextIO) -> None:
        self.target = target
        self.parts: list[str] = []
        self.clean = True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            # Click probes streams with write(b"") and expects the TypeError a text stream raises.
            return self.target.write(text)
        try:
            written = self.target.write(text)
        except BaseException:
            self.clean = False
            raise
        self.parts.append(text)
        return written

    def flush(self) -> None:
        try:
            self.target.flush()
        except BaseException:
            self.clean = False
            raise

    def __getattr__(self, name: str) -> object:
        # Without a binary buffer, Click and rich have to write through write(),
        # so nothing printed bypasses the copy.
        if name == "buffer":
            raise AttributeError(name)
        # isatty, fileno, encoding and the rest come from the real stream, so
        # rich detects the same terminal as without the recorder.
        return getattr(self.target, name)


def replay(text: str) -> bool:
    """Print a cached render and return False when the reader has gone away (`loom -h | head -1`)."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Keep the interpreter's final flush from raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return False
    return True
