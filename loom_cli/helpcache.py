"""Print the help for `loom`, `loom --help` and `loom -h` from a cached render, without importing Typer.

The root help is the page people and scripts ask for most, and building it
through Typer and rich costs about ten times the interpreter's start-up. Its
text depends only on loom's code, the Typer and rich in use, the terminal
(width, colour, encoding) and a few environment variables, so it is rendered
once through Typer, as before, and replayed while none of those change.

Every input that can change the render is part of the cache key, kept in full
in the cache file and compared on each read. A file that does not match, or
cannot be read, means a normal render. The key contains the values of a
fixed list of terminal, colour and locale variables and of no others, so no
secret can reach it. Nothing in this module may fail a command: any error means "no cache".
"""

from __future__ import annotations

import os
import stat
import sys
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TextIO

# Bumped when the file layout below changes.
_FORMAT = "loom-help-cache 2"

# The root invocations whose output is the root help: bare `loom` (which also
# exits 2, as Click does for a group without a command) and the help flags.
_HELP_ARGS = ((), ("--help",), ("-h",))

# Same as loom_cli.commands.completion.COMPLETE_VAR, which imports Typer.
COMPLETE_VAR = "_LOOM_COMPLETE"

# Environment variables that Typer, Click, rich or gettext (Typer translates
# its panel titles) read while rendering help.
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
    "_TYPER_FORCE_DISABLE_TERMINAL",
    "_TYPER_STANDARD_TRACEBACK",
    "PYTHONIOENCODING",
    "PYTHONUTF8",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
)

# The libraries whose code shapes the render. Every source file of theirs is stamped.
_RENDER_LIBRARIES = ("typer", "rich")

# Entries beyond this many are removed, least recently used first. Each mix of
# arguments, terminal size, tty state and colour settings has its own entry.
_MAX_ENTRIES = 16

# A root help page is about 5 KB, or 10 KB in colour, so a larger entry is not one.
_MAX_ENTRY_BYTES = 1 << 20


def cache_dir(env: Mapping[str, str]) -> str:
    """Return loom's cache folder: `cache` in LOOM_CONFIG_DIR, else the one platformdirs gives."""
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


def _tree_stamps(root: str) -> list[str]:
    """Stamp every Python source file under `root`, so an upgrade or an edit renders anew."""
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
        stamps.append(f"{name}={origin}")
        if origin:
            stamps.extend(_tree_stamps(os.path.dirname(origin)))
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
    return [f"{name}={env[name]!r}" for name in _RENDER_ENV if name in env]


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
        *_tree_stamps(os.path.dirname(os.path.abspath(__file__))),
        *_terminal_state(),
        *_render_env(env),
    ]
    return "\n".join(line.replace("\n", " ") for line in lines)


class HelpCache:
    """One cache entry: the root help for these arguments in this terminal."""

    def __init__(self, args: tuple[str, ...], folder: str, key: str, env: Mapping[str, str]) -> None:
        self.args = args
        self.folder = folder
        self.key = key
        self.env = env
        self.path = os.path.join(folder, f"help-{zlib.crc32(key.encode('utf-8')):08x}.txt")

    @classmethod
    def for_invocation(cls, args: list[str], env: Mapping[str, str]) -> HelpCache | None:
        """Return the entry for `args`, or None when they are not a root-help call or nothing can be cached."""
        # A shell asking for completions runs a bare `loom` with this variable set.
        if tuple(args) not in _HELP_ARGS or COMPLETE_VAR in env:
            return None
        # On Windows, rich also queries the console's features, which the key does not include.
        if sys.platform == "win32":
            return None
        try:
            folder = cache_dir(env)
            # Without a home or with a relative XDG_CACHE_HOME, the folder would land in the working directory.
            if not os.path.isabs(folder):
                return None
            return cls(tuple(args), folder, invocation_key(tuple(args), env), env)
        except Exception:
            return None

    def read(self) -> tuple[int, str] | None:
        """Return the stored (exit code, text), or None unless the entry matches this key exactly."""
        try:
            # Only a regular file: a FIFO would block and a link to /dev/zero would never end.
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except (OSError, AttributeError):
            return None

        try:
            status = os.fstat(fd)
            if not stat.S_ISREG(status.st_mode) or status.st_size > _MAX_ENTRY_BYTES:
                return None
            content = os.read(fd, _MAX_ENTRY_BYTES + 1).decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        finally:
            os.close(fd)

        header, separator, text = content.partition("\n\n")
        if not separator:
            return None
        first, _, rest = header.partition("\n")
        fields = first.split(" ")
        try:
            code, length, checksum = int(fields[0]), int(fields[1]), int(fields[2], 16)
        except (ValueError, IndexError):
            return None
        if rest != self.key or len(text) != length or zlib.crc32(text.encode("utf-8")) != checksum:
            return None
        # Mark the entry as used, so pruning removes the least recently used ones.
        try:
            os.utime(self.path)
        except OSError:
            pass
        return code, text

    def write(self, code: int, text: str) -> None:
        """Store the render, unless the cache folder cannot be written to."""
        content = f"{code} {len(text)} {zlib.crc32(text.encode('utf-8')):08x}\n{self.key}\n\n{text}"
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
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

        Only a clean render is kept: nothing on stderr, and the exit code the
        arguments call for (0 for the help flags, 2 for a bare `loom`). The key
        must also be the same at the end as at the start, because a terminal
        resized during the render may have changed the page.
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
                try:
                    unchanged = invocation_key(self.args, self.env) == self.key
                except Exception:
                    unchanged = False
                if unchanged:
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
