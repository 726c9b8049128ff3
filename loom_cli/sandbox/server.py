"""Run the sandbox under uvicorn: bind, print the base URL, serve until Ctrl-C or SIGTERM."""

from __future__ import annotations

import errno
import ipaddress
import logging
import signal
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any, TextIO

from loom_cli.errors import UsageError

logger = logging.getLogger("loom.sandbox")

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    db_path: str = ":memory:"
    token_ttl: int = 3600
    rate_limit: int | None = None
    seed_demo_data: bool = False
    simulate_workers: bool = False
    fail_rate: float = 0.0
    work_seconds: float = 3.0


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_url(host: str, port: int) -> str:
    url_host = f"[{host}]" if ":" in host else host
    return f"http://{url_host}:{port}/v1"


def _connectable_host(host: str) -> str:
    """Return an address that reaches a server bound to `host` from this machine."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen on (host, port); raise UsageError for a busy port or an unusable address."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"cannot listen on host {host!r}: {exc.strerror}", hint="use --host 127.0.0.1") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"port {port} on {host} is already in use",
                hint="stop the other server, choose another --port, or use --port 0 for a free one",
            ) from exc
        raise UsageError(f"cannot listen on {host} port {port}: {exc.strerror}") from exc
    return sock


def _configure_logging(stream: TextIO) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    for name in ("loom.sandbox", "uvicorn"):
        log = logging.getLogger(name)
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    # uvicorn's own start-up lines name the socket, not the API's base URL; keep only its warnings.
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    return handler


def _remove_logging(handler: logging.Handler) -> None:
    for name in ("loom.sandbox", "uvicorn"):
        logging.getLogger(name).removeHandler(handler)


def _stoppable_server_class() -> type:
    import uvicorn

    class StoppableServer(uvicorn.Server):
        """A uvicorn server that also runs `on_exit` (stopping the simulated workers) when a signal arrives."""

        on_exit: Callable[[], None] | None = None
        # The first signal that asked the server to stop; `serve` returns it.
        stop_signal: int | None = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            self.stop_signal = self.stop_signal or sig
            if self.on_exit is not None:
                self.on_exit()
            super().handle_exit(sig, frame)

    return StoppableServer


def _install_stop_handlers(server: object) -> dict[int, object]:
    """Make SIGINT and SIGTERM stop `server` gracefully, also before and after uvicorn's own handlers run.

    uvicorn handles both signals while it serves, then re-raises the one it caught once it
    has shut down. With Python's default handlers in place that would end a clean stop with
    KeyboardInterrupt (exit 130) or status 143; these handlers make it a no-op instead. A
    signal that arrives before serving starts is kept in `should_exit`, which uvicorn checks.
    """

    def request_stop(signum: int, frame: object) -> None:
        server.stop_signal = server.stop_signal or signum  # type: ignore[attr-defined]
        server.should_exit = True  # type: ignore[attr-defined]

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}


def serve(options: ServerOptions, *, stdout: TextIO, stderr: TextIO) -> int | None:
    """Serve the sandbox until a signal stops it. Print the base URL as the first line of `stdout`.

    Return the number of the signal that stopped the server (SIGINT or SIGTERM).
    """
    import uvicorn

    from loom_cli.sandbox.app import create_app
    from loom_cli.sandbox.db import Database, DatabaseError

    handler = _configure_logging(stderr)
    # The port comes first, so a port in use fails before the database is created or seeded.
    try:
        sock = bind_socket(options.host, options.port)
    except BaseException:
        _remove_logging(handler)
        raise
    try:
        database = Database(options.db_path)
    except DatabaseError as exc:
        sock.close()
        _remove_logging(handler)
        raise UsageError(str(exc), hint="pass --db with a writable file path, or --db :memory:") from exc

    previous_handlers: dict[int, object] = {}
    try:
        app = create_app(token_ttl=options.token_ttl, rate_limit=options.rate_limit, database=database)
        if options.seed_demo_data:
            _seed(app, database)

        server_class = _stoppable_server_class()
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", ws="none", timeout_graceful_shutdown=5)
        server = server_class(config)
        previous_handlers = _install_stop_handlers(server)
        _run(server, sock, options, stdout)
        logger.info("sandbox stopped")
        return server.stop_signal
    finally:
        sock.close()
        for sig, old in previous_handlers.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
        database.close()
        _remove_logging(handler)


def _seed(app: object, database: object) -> None:
    from loom_cli.sandbox.seed import seed_demo_data

    added = seed_demo_data(app.state.sandbox.jobs, database)  # type: ignore[attr-defined]
    if added:
        logger.info("seeded %d demo jobs", added)
    else:
        logger.info("the database already contains jobs, so no demo jobs were added")


def _run(server: object, sock: socket.socket, options: ServerOptions, stdout: TextIO) -> None:
    """Announce the URL, start the helpers that need it, and serve until stopped."""
    from loom_cli.sandbox.auth import warm_up

    port = sock.getsockname()[1]
    url = base_url(options.host, port)
    stdout.write(url + "\n")
    stdout.flush()
    where = "in memory" if options.db_path == ":memory:" else options.db_path
    logger.info("serving the Loom API at %s (database %s); stop with Ctrl-C", url, where)

    # Import eth_account in the background so the first login does not wait for it.
    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()

    workers = None
    if options.simulate_workers:
        from loom_cli.sandbox.workers import SimulatedWorkers

        workers = SimulatedWorkers(
            base_url(_connectable_host(options.host), port),
            fail_rate=options.fail_rate,
            work_seconds=options.work_seconds,
        )
        workers.start()
        # Stop the workers as soon as shutdown begins, before the server stops responding to them.
        server.on_exit = workers.request_stop  # type: ignore[attr-defined]
    try:
        server.run(sockets=[sock])  # type: ignore[attr-defined]
    finally:
        if workers is not None:
            workers.stop()


def default_db_path(data_dir: Path) -> Path:
    from loom_cli.paths import ensure_private_dir

    return ensure_private_dir(data_dir) / "sandbox.db"


def check_sandbox_installed() -> None:
    """Raise UsageError naming the extra to install when FastAPI, uvicorn or PyJWT is missing."""
    import importlib

    missing = []
    for module, package in (("fastapi", "fastapi"), ("uvicorn", "uvicorn"), ("jwt", "pyjwt")):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise UsageError(
            f"loom sandbox needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed",
            hint="pip install 'loom-cli[sandbox]'",
        )

