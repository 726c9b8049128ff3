"""Build the sandbox's FastAPI application."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from loom_cli.sandbox import routes
from loom_cli.sandbox.auth import Authenticator, random_nonce
from loom_cli.sandbox.db import Database
from loom_cli.sandbox.errors import ApiError
from loom_cli.sandbox.idempotency import IdempotencyStore
from loom_cli.sandbox.jobs import JobService
from loom_cli.sandbox.middleware import RequestContextMiddleware
from loom_cli.sandbox.ratelimit import RateLimiter

DEFAULT_TOKEN_TTL = 3600


def create_app(
    db_path: str | Path = ":memory:",
    token_ttl: int = DEFAULT_TOKEN_TTL,
    rate_limit: int | None = None,
    *,
    clock: Callable[[], float] = time.time,
    nonce_factory: Callable[[], str] = random_nonce,
    database: Database | None = None,
) -> FastAPI:
    """Return the sandbox app serving the Loom API under /v1, stored in `db_path` (":memory:" for a throwaway one).

    `token_ttl` is the token lifetime in seconds and `rate_limit` the requests allowed per
    minute per caller (None for no limit). Tests may inject `clock` (epoch seconds) and
    `nonce_factory`, or pass an open `database` instead of `db_path`.
    """
    from loom_cli.sandbox.openapi import build_openapi

    db = database if database is not None else Database(db_path)
    app = FastAPI(
        title="Loom API (sandbox)",
        openapi_url=f"{routes.PREFIX}/openapi.json",
        docs_url=f"{routes.PREFIX}/docs",
        redoc_url=None,
        redirect_slashes=False,
    )
    app.state.db = db
    app.state.sandbox = routes.SandboxState(
        auth=Authenticator(db, clock=clock, token_ttl=token_ttl, nonce_factory=nonce_factory),
        jobs=JobService(db, clock=clock),
        idempotency=IdempotencyStore(db, clock=clock),
        limiter=RateLimiter(rate_limit, clock=clock) if rate_limit else None,
    )
    for method, path, endpoint in routes.ROUTES:
        app.add_api_route(routes.PREFIX + path, endpoint, methods=[method], response_model=None, include_in_schema=False)

    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(RequestContextMiddleware)
    app.openapi = build_openapi  # type: ignore[method-assign]
    return app


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return routes.error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Give Starlette's own 404 and 405 responses the API's error body; 405 lists every method the path takes."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        error = ApiError(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed on {request.url.path}; use {', '.join(allowed)}.",
            headers={"Allow": ", ".join(allowed)},
        )
    elif exc.status_code == 404:
        hint = "" if request.url.path.startswith(routes.PREFIX + "/") else f"; the API lives under {routes.PREFIX}"
        error = ApiError(404, "not_found", f"No endpoint matches {request.url.path}{hint}.")
    else:
        error = ApiError(exc.status_code, "invalid_request", str(exc.detail))
    return routes.error_response(error)


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(request.url.path) and getattr(route, "methods", None):
            methods.update(route.methods)
    return sorted(methods)
