"""The HTTP layer every loom command uses: `ApiClient` over httpx.

`ApiClient.request` returns the API's 2xx and 304 responses as `ApiResponse` and
turns everything else into an exception from `loom_cli.errors`, in one place
(`_error_for_reply`):

    400, 413, 422             UsageError           exit 2
    401                       AuthError            exit 3  (after one renewal and retry)
    403, 409                  ConflictError        exit 5
    404                       NotFoundError        exit 4
    429, 5xx, other statuses  ApiUnavailableError  exit 6  (after retries where allowed)
    a body that breaks the
    contract, network errors  ApiUnavailableError  exit 6

Rules applied to every request:
- plain http goes only to loopback hosts (127.0.0.0/8, ::1, localhost); any
  other http URL raises UsageError before a connection is made;
- redirects are never followed, so a token never follows one to another host;
- `Authorization` is sent only to the origin (scheme, host, port) of the API
  URL that issued the token;
- proxies come from the environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY), and
  loopback API URLs always bypass them;
- GET and HEAD are retried on connection errors, timeouts, 429, 502, 503 and
  504; a POST only when it carries an `Idempotency-Key`, because resending any
  other POST could create a second job.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import re
import ssl
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TextIO

import httpx
import tenacity

from loom_cli import __version__
from loom_cli.errors import (
    ApiUnavailableError,
    AuthError,
    ConflictError,
    LoomError,
    NotFoundError,
    UsageError,
)
from loom_cli.text import escape_control

if TYPE_CHECKING:
    from loom_cli.auth import TokenProvider
    from loom_cli.context import AppContext

USER_AGENT = f"loom/{__version__}"

# Bodies above this size are not read: no Loom response comes near it, and a
# misconfigured URL could point at something that streams forever.
MAX_BODY_BYTES = 10 * 1024 * 1024

# The deepest Loom response is a result whose output nests 64 levels. A deeper body
# breaks the contract, and refusing it keeps the recursive code that handles bodies
# (YAML output, -vv redaction) far from Python's default recursion limit of 1000.
MAX_JSON_DEPTH = 128
# The closing quote is optional, so an unterminated string runs to the end of the body, as a JSON
# parser reads it. A required quote made the scan quadratic on a body of many unterminated strings.
_JSON_STRING_OR_BRACKET = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)

DEFAULT_MAX_ATTEMPTS = 4
DEFAULT_MAX_BACKOFF = 30.0  # seconds of sleeping between attempts, in total
RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRY_AFTER_STATUSES = frozenset({429, 503})
ALWAYS_RETRIED_METHODS = frozenset({"GET", "HEAD"})
IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,255}")

# Errors where the request may not have reached the server, or the response was
# lost: connection refused or reset, timeouts, a connection closed before a response.
TRANSIENT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)

_STATUS_ERRORS: dict[int, type[LoomError]] = {
    400: UsageError,
    413: UsageError,
    422: UsageError,
    401: AuthError,
    403: ConflictError,
    409: ConflictError,
    404: NotFoundError,
}

LOGIN_HINT = "run: loom login (scripts: set LOOM_PRIVATE_KEY, or LOOM_PASSPHRASE for the stored wallet)"


@dataclass
class ApiResponse:
    status: int
    data: Any  # parsed JSON body; None for 304 or an empty body
    headers: httpx.Headers
    request_id: str | None


@dataclass
class BearerToken:
    """A token and the API URL that issued it; it may only be sent to that URL's origin."""

    value: str
    api_url: str


@dataclass
class _Outgoing:
    """One request as the caller asked for it; each attempt adds its own X-Request-Id."""

    method: str
    url: httpx.URL
    content: bytes | None
    headers: dict[str, str]
    token: BearerToken | None = None


@dataclass
class _Reply:
    """One HTTP response, with its body read (at most MAX_BODY_BYTES)."""

    status: int
    reason: str
    headers: httpx.Headers
    body: bytes
    request_id: str
    # Set when retries stopped on this response: how many attempts were made, and why no more.
    give_up_note: str | None = None


def is_loopback_host(host: str) -> bool:
    """Tell whether `host` is `localhost`, an address in 127.0.0.0/8, or ::1."""
    name = host.lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def origin_of(url: httpx.URL | str) -> tuple[str, str, int | None]:
    """Return (scheme, host, port) with the scheme's default port filled in."""
    parsed = httpx.URL(url)
    default_port = {"http": 80, "https": 443}.get(parsed.scheme)
    return parsed.scheme, parsed.host.lower(), parsed.port or default_port


def check_url_security(url: httpx.URL, *, base_url: str | None = None) -> None:
    """Raise UsageError for a URL loom must not send requests to; `base_url` is suggested in the hint."""
    if url.scheme == "https":
        return
    if url.scheme == "http" and is_loopback_host(url.host):
        return
    if url.scheme == "http":
        shown = httpx.URL(base_url) if base_url else url
        secure = escape_control(str(shown.copy_with(scheme="https", port=None if shown.port in (None, 80) else shown.port)))
        raise UsageError(
            f"plain http to {url.host} is not allowed: tokens and signatures would cross the network unencrypted",
            hint=f"use https, for example --api-url {secure} (plain http is allowed only for loopback: 127.0.0.0/8, ::1 and localhost)",
        )
    raise UsageError(f"unsupported URL scheme {url.scheme!r} in {url}", hint="use an https:// API URL")


class ApiClient:
    """A client of the Loom API at `base_url`; see the module docstring for its rules."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        tokens: TokenProvider | None = None,
        transport: httpx.BaseTransport | None = None,
        verbose: int = 0,
        log_stream: TextIO | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.max_attempts = max(1, max_attempts)
        self.max_backoff = max(0.0, max_backoff)
        self._timeout = timeout
        self._sleep = sleep
        self._clock = clock
        self._log = _RequestLog(verbose, log_stream)
        self._backoff = tenacity.wait_exponential_jitter(multiplier=0.5, max=10, jitter=0.5)
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            transport=transport,
            # Proxies from the environment apply (httpx ignores them when a
            # transport is injected), except for a loopback API URL.
            trust_env=True,
            mounts=_loopback_bypass(self.base_url),
        )

    @classmethod
    def from_context(cls, app: AppContext, *, auth: bool) -> ApiClient:
        """Build a client for the profile's API URL; with `auth`, requests carry the profile's token."""
        tokens = None
        if auth:
            from loom_cli.auth import TokenProvider

            tokens = TokenProvider(app)
        return cls(
            app.settings.api_url,
            timeout=app.settings.timeout,
            tokens=tokens,
            transport=app.transport,
            verbose=app.options.verbose,
            log_stream=app.stderr,
            sleep=app.sleep,
            clock=app.clock,
            max_attempts=app.settings.retries,
            max_backoff=app.settings.retry_budget,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("POST", path, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        auth: bool | None = None,
    ) -> ApiResponse:
        """Send `method` to `base_url + path` and return a 2xx or 304 response, or raise a LoomError.

        `json` is sent as compact JSON, with Decimal values written exactly.
        `auth=None` uses the client's default (whether it was built with a
        token provider).
        """
        method = method.upper()
        url = self._url(path, params)
        check_url_security(url, base_url=self.base_url)

        send_headers = dict(headers or {})
        content = None
        if json is not None:
            content = _dumps(json).encode("utf-8")
            send_headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            if not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
                raise UsageError(
                    f"invalid idempotency key {idempotency_key!r}",
                    hint="use 1-255 printable ASCII characters without spaces",
                )
            send_headers["Idempotency-Key"] = idempotency_key
        retryable = method in ALWAYS_RETRIED_METHODS or idempotency_key is not None

        use_auth = self.tokens is not None if auth is None else auth
        if use_auth and self.tokens is None:
            raise ValueError("auth=True needs an ApiClient built with a TokenProvider")

        outgoing = _Outgoing(method, url, content, send_headers)
        if use_auth:
            outgoing.token = self._bearer_for(url)
        reply = self._send(outgoing, retryable)

        if reply.status == 401 and outgoing.token is not None and self.tokens is not None:
            renewed = self.tokens.renew(rejected=outgoing.token.value)
            if renewed is None:
                raise _error_for_reply(reply, method, url, hint=self.tokens.login_hint())
            self._log.note(f"token rejected with 401; retrying {method} {_display_url(url)} once with a renewed token")
            outgoing.token = self._checked_bearer(renewed, url)
            reply = self._send(outgoing, retryable)

        if 200 <= reply.status < 300 or reply.status == 304:
            return ApiResponse(
                status=reply.status,
                data=_parse_success_body(reply, method, url),
                headers=reply.headers,
                request_id=reply.request_id,
            )
        hint = self.tokens.login_hint() if reply.status == 401 and self.tokens is not None else None
        if reply.status == 404 and not self.base_url.endswith("/v1"):
            # Every endpoint is under /v1, so a URL without it gets 404 for every command.
            hint = f"Loom API URLs end in /v1; if you meant {self.base_url}/v1, pass --api-url {self.base_url}/v1 or run: loom config set api_url {self.base_url}/v1"
        raise _error_for_reply(reply, method, url, hint=hint)

    # -- building the request ------------------------------------------------------------

    def _url(self, path: str, params: Mapping[str, Any] | None) -> httpx.URL:
        if not path.startswith("/"):
            path = "/" + path
        try:
            url = httpx.URL(self.base_url + path)
        except httpx.InvalidURL as exc:
            raise UsageError(f"invalid API URL {self.base_url + path!r}: {exc}") from exc
        if params:
            url = url.copy_merge_params({key: value for key, value in params.items() if value is not None})
        return url

    def _bearer_for(self, url: httpx.URL) -> BearerToken:
        assert self.tokens is not None
        return self._checked_bearer(self.tokens.token(), url)

    @staticmethod
    def _checked_bearer(token: BearerToken, url: httpx.URL) -> BearerToken:
        if origin_of(token.api_url) != origin_of(url):
            raise AuthError(
                f"the token was issued by {token.api_url} and is never sent to {url.scheme}://{url.netloc.decode('ascii')}",
                hint=LOGIN_HINT,
            )
        return token

    # -- sending, with retries -----------------------------------------------------------

    def _send(self, outgoing: _Outgoing, retryable: bool) -> _Reply:
        """Send the request, retrying transient failures, and return the last response.

        A retried status that persists comes back as the reply, with
        `give_up_note` set; a network failure that persists raises ApiUnavailableError.
        """
        method, url = outgoing.method, outgoing.url
        attempts = self.max_attempts if retryable else 1
        sent_ids: list[str] = []
        early_stop: list[str] = []

        def attempt() -> _Reply:
            sent_ids.append(uuid.uuid4().hex)
            return self._send_once(outgoing, sent_ids[-1], len(sent_ids), attempts)

        def wait(state: tenacity.RetryCallState) -> float:
            retry_after = self._retry_after(state)
            if retry_after is not None:
                return retry_after
            remaining = self.max_backoff - state.idle_for
            return max(0.0, min(self._backoff(state), remaining))

        def stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number >= attempts:
                return True
            remaining = self.max_backoff - state.idle_for
            retry_after = self._retry_after(state)
            if retry_after is not None and retry_after > remaining:
                early_stop.append(
                    f"the API asked to wait {retry_after:g} s before retrying, "
                    f"more than the {max(remaining, 0):g} s left of the {self.max_backoff:g} s retry budget"
                )
                return True
            if remaining <= 0:
                early_stop.append(f"the {self.max_backoff:g} s retry budget is used up")
                return True
            return False

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_is_transient) | tenacity.retry_if_result(_is_retried_status),
            wait=wait,
            stop=stop,
            sleep=self._sleep,
            before_sleep=lambda state: self._log.retry(state, attempts),
            # Hand back the last state instead of raising tenacity.RetryError.
            retry_error_callback=lambda state: state,
        )
        try:
            result = retrying(attempt)
        except httpx.HTTPError as exc:
            # Not a transient error (a proxy refusal, an unsupported protocol): no retry helps.
            raise ApiUnavailableError(
                f"{method} {_display_url(url)} failed: {_describe_exception(exc, self._timeout)}",
                request_id=sent_ids[-1] if sent_ids else None,
                hint=_unreachable_hint(exc),
            ) from exc
        if isinstance(result, _Reply):
            return result

        # Retries stopped: the error names the number of attempts and why loom stopped.
        count = len(sent_ids)
        tries = f"{count} attempt" + ("s" if count != 1 else "")
        if not retryable:
            note = f"not retried, because {method} without an Idempotency-Key could take effect twice"
        elif early_stop:
            note = f"gave up after {tries}: {early_stop[-1]}"
        else:
            note = f"gave up after {tries}"
        outcome = result.outcome
        assert outcome is not None
        if not outcome.failed:
            reply: _Reply = outcome.result()
            reply.give_up_note = note
            return reply

        exc = outcome.exception()
        assert isinstance(exc, httpx.HTTPError)
        raise ApiUnavailableError(
            f"{method} {_display_url(url)} failed: {_describe_exception(exc, self._timeout)} ({note})",
            request_id=sent_ids[-1],
            hint=_unreachable_hint(exc),
        ) from exc

    def _send_once(self, outgoing: _Outgoing, request_id: str, attempt: int, attempts: int) -> _Reply:
        headers = {**outgoing.headers, "X-Request-Id": request_id}
        if outgoing.token is not None:
            headers["Authorization"] = f"Bearer {outgoing.token.value}"
        request = self._client.build_request(outgoing.method, outgoing.url, content=outgoing.content, headers=headers)
        self._log.request(request, outgoing.content)

        started = time.monotonic()
        try:
            response = self._client.send(request, stream=True)
            try:
                body = _read_capped(response, request_id, deadline=started + self._timeout)
            finally:
                response.close()
        except httpx.HTTPError as exc:
            self._log.failure(request, exc, started, request_id, attempt, attempts)
            raise

        echoed = response.headers.get("X-Request-Id")
        reply = _Reply(
            status=response.status_code,
            reason=response.reason_phrase,
            headers=response.headers,
            body=body,
            request_id=_clean_request_id(echoed) if echoed else request_id,
        )
        self._log.response(request, reply, started, attempt, attempts)
        return reply

    def _retry_after(self, state: tenacity.RetryCallState) -> float | None:
        """Seconds the API asked to wait (Retry-After on 429 and 503), or None."""
        outcome = state.outcome
        if outcome is None or outcome.failed:
            return None
        reply: _Reply = outcome.result()
        if reply.status not in RETRY_AFTER_STATUSES:
            return None
        return parse_retry_after(reply.headers.get("Retry-After"), now=self._clock())


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Parse a Retry-After header (seconds or an HTTP date) into seconds from `now`; None if absent or invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def _loopback_bypass(base_url: str) -> dict[str, httpx.BaseTransport | None]:
    """Mount the default (direct) transport for a loopback API host, so proxies never see loopback traffic."""
    try:
        host = httpx.URL(base_url).host
    except httpx.InvalidURL:
        return {}
    if not is_loopback_host(host):
        return {}
    pattern_host = f"[{host}]" if ":" in host else host
    return {f"all://{pattern_host}": None}


def _is_retried_status(reply: _Reply) -> bool:
    return reply.status in RETRY_STATUSES


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS) and not _is_tls_failure(exc)


def _is_tls_failure(exc: BaseException) -> bool:
    """Tell whether a connection failed on TLS (a certificate problem does not go away on retry)."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _describe_exception(exc: httpx.HTTPError, timeout: float) -> str:
    if _is_tls_failure(exc):
        return f"TLS handshake failed ({escape_control(str(exc))})"
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connecting timed out after {timeout:g} s"
    if isinstance(exc, httpx.TimeoutException):
        return f"no response within {timeout:g} s (timed out)"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the connection was closed before a complete response ({escape_control(str(exc))})"
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect ({escape_control(str(exc)) or type(exc).__name__})"
    if isinstance(exc, httpx.ProxyError):
        return f"the proxy refused the connection ({escape_control(str(exc))})"
    return f"{type(exc).__name__}: {escape_control(str(exc))}"


def _unreachable_hint(exc: httpx.HTTPError) -> str:
    if _is_tls_failure(exc):
        return "check the API URL; for a private certificate authority set SSL_CERT_FILE"
    if isinstance(exc, httpx.ProxyError):
        return "check HTTPS_PROXY, HTTP_PROXY and NO_PROXY"
    return "check the API URL (--api-url, LOOM_API_URL) and your network, then try again"


def _read_capped(response: httpx.Response, request_id: str, *, deadline: float) -> bytes:
    """Read the body, at most MAX_BODY_BYTES, raising httpx.ReadTimeout once time.monotonic() passes `deadline`.

    httpx's read timeout applies to each read, so a server that sends a byte
    now and then would otherwise hold loom far past --timeout.
    NOTE: headers sent a byte at a time are still bounded only by that per-read
    timeout, because httpx reads them before this function runs.
    """
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large(response, request_id)
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large(response, request_id)
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("the response body took longer than the timeout", request=response.request)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(response: httpx.Response, request_id: str) -> ApiUnavailableError:
    echoed = response.headers.get("X-Request-Id")
    return ApiUnavailableError(
        f"the API returned HTTP {response.status_code} with a body larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB; "
        "no Loom API response is that large, so loom stopped reading",
        request_id=_clean_request_id(echoed) if echoed else request_id,
        hint="check that --api-url points at a Loom API",
    )


def _clean_request_id(value: str) -> str:
    return escape_control(value)[:128]


def _dumps(value: Any) -> str:
    # Compact JSON in which a Decimal (an exact number from a job spec or a
    # result output) keeps every digit, which json.dumps cannot write.
    from loom_cli.sandbox.jsonio import dumps

    return dumps(value)


def _display_url(url: httpx.URL) -> str:
    return escape_control(str(url))


# -- mapping responses to results and errors --------------------------------------------


def _nesting_exceeds(body: bytes, limit: int) -> bool:
    """Tell whether arrays and objects in a JSON text nest deeper than `limit` (brackets in strings do not count)."""
    depth = 0
    for token in _JSON_STRING_OR_BRACKET.finditer(body):
        bracket = token.group()
        if bracket in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif bracket in (b"]", b"}"):
            depth -= 1
    return False


def _decode_json(body: bytes) -> tuple[bool, Any]:
    """Return (True, value) for a JSON body, else (False, None)."""
    # json's C parser recurses once per level. eth-account raises the recursion
    # limit to 100000 when imported, so a deep body could overflow the C stack
    # and kill the process instead of raising RecursionError.
    if _nesting_exceeds(body, MAX_JSON_DEPTH):
        return False, None
    try:
        # Numbers are read as exact decimals, as the API writes them.
        return True, json.loads(body.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False, None


def _describe_body(reply: _Reply) -> str:
    """Name what a body that is not the expected JSON looks like, for error messages."""
    if not reply.body.strip():
        return "an empty body"
    content_type = escape_control(reply.headers.get("Content-Type", "").split(";")[0].strip().lower())
    if content_type == "text/html" or reply.body.lstrip()[:1] == b"<":
        return "an HTML page"
    if _nesting_exceeds(reply.body, MAX_JSON_DEPTH):
        return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
    ok, _ = _decode_json(reply.body)
    if not ok:
        return f"a body that is not valid JSON ({content_type or 'no Content-Type'})"
    return "JSON that is not a Loom API error object"


def _parse_success_body(reply: _Reply, method: str, url: httpx.URL) -> Any:
    if reply.status in (204, 304) or not reply.body.strip():
        return None
    ok, data = _decode_json(reply.body)
    if not ok:
        raise ApiUnavailableError(
            f"{method} {_display_url(url)}: the API returned HTTP {reply.status} with {_describe_body(reply)} instead of JSON",
            request_id=reply.request_id,
            hint="check that --api-url points at a Loom API",
        )
    return data


def _parse_error_body(reply: _Reply) -> tuple[str, str, dict[str, Any]] | None:
    """Return (code, message, details) from the contract's error body, or None when it has another shape."""
    ok, data = _decode_json(reply.body)
    if not ok or not isinstance(data, dict):
        return None
    error = data.get("error")
    if not isinstance(error, dict):
        return None
    code, message, details = error.get("code"), error.get("message"), error.get("details", {})
    if not isinstance(code, str) or not isinstance(message, str):
        return None
    if details is None:
        details = {}
    if not isinstance(details, dict):
        return None
    return code, message, details


def _error_for_reply(reply: _Reply, method: str, url: httpx.URL, *, hint: str | None = None) -> LoomError:
    """Map a non-2xx response to the LoomError for its status, using the contract's error body."""
    where = f"{method} {_display_url(url)}"

    if 300 <= reply.status < 400:
        location = escape_control(reply.headers.get("Location", ""))[:300] or "nowhere"
        return ApiUnavailableError(
            f"{where}: the API returned HTTP {reply.status} with a redirect to {location}; loom does not follow redirects",
            request_id=reply.request_id,
            hint="set --api-url (or LOOM_API_URL, or `loom config set api_url`) to the URL the API is served at",
        )

    note = f" ({reply.give_up_note})" if reply.give_up_note else ""
    parsed = _parse_error_body(reply)
    if parsed is None:
        return ApiUnavailableError(
            f"{where}: the API returned HTTP {reply.status} ({escape_control(reply.reason)}) with {_describe_body(reply)}{note}",
            request_id=reply.request_id,
            hint="check that --api-url points at a Loom API; if it does, try again later",
        )

    code, server_message, details = parsed
    message = escape_control(server_message)[:500]
    field = details.get("field")
    if isinstance(field, str) and field and field not in server_message:
        message += f" (field {escape_control(field)[:200]})"
    error_class = _STATUS_ERRORS.get(reply.status, ApiUnavailableError)
    if error_class is ApiUnavailableError:
        message = f"{where}: HTTP {reply.status} ({escape_control(reply.reason)}) {escape_control(code)[:64]}: {message}{note}"
        if hint is None:
            hint = "the API is limiting requests; wait a minute, then try again" if reply.status == 429 else (
                "try again later; if it keeps failing, report the request id to the API's operator"
            )
    return error_class(message, hint=hint, request_id=reply.request_id, api_code=code, details=details)


# -- -v and -vv logging -----------------------------------------------------------------

# Header names and JSON keys whose values never reach the log.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_SECRET_KEY_PARTS = ("token", "signature", "secret", "passphrase", "password", "private_key", "privatekey", "authorization")
# Runs of base64url characters and dots, the text a JWT can hide in.
_TOKEN_RUN = re.compile(r"[A-Za-z0-9_.-]+")
_LOGGED_BODY_CHARS = 4000
REDACTED = "[redacted]"


def redact_jwts(text: str) -> str:
    """Replace each JWT in `text` (base64url parts joined by dots, the first from "eyJ") with `[redacted]`.

    Each run of base64url characters and dots is split at its dots rather than
    searched with one regular expression, because such a search takes time
    quadratic in the run's length on text like "eyJeyJeyJ...", which a server
    could send to stall `loom -vv`.
    """
    return _TOKEN_RUN.sub(_redact_run, text)


def _redact_run(match: re.Match[str]) -> str:
    run = match.group()
    if "eyJ" not in run or "." not in run:
        return run
    parts = run.split(".")
    kept: list[str] = []
    index = 0
    while index < len(parts):
        part = parts[index]
        start = part.find("eyJ")
        # A JWT needs a non-empty payload after the header and a third part after it (maybe empty).
        if start >= 0 and index + 2 < len(parts) and parts[index + 1]:
            kept.append(part[:start] + REDACTED)
            index += 3
        else:
            kept.append(part)
            index += 1
    return ".".join(kept)


def redact(value: Any) -> Any:
    """Return a copy of a JSON value with secret-looking fields and any JWT replaced by `[redacted]`."""
    if isinstance(value, dict):
        return {
            key: REDACTED if any(part in str(key).lower() for part in _SECRET_KEY_PARTS) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_jwts(value)
    return value


class _RequestLog:
    """Writes -v lines (one per attempt, one per retry) and -vv headers and bodies to stderr."""

    def __init__(self, verbose: int, stream: TextIO | None) -> None:
        self.verbose = verbose if stream is not None else 0
        self.stream = stream

    def _write(self, line: str) -> None:
        assert self.stream is not None
        self.stream.write(f"http: {line}\n")
        self.stream.flush()

    def note(self, line: str) -> None:
        if self.verbose >= 1:
            self._write(line)

    def request(self, request: httpx.Request, content: bytes | None) -> None:
        if self.verbose < 2:
            return
        self._write(f"> {request.method} {_display_url(request.url)}")
        self._headers(">", request.headers)
        if content:
            self._body(">", content)

    def response(self, request: httpx.Request, reply: _Reply, started: float, attempt: int, attempts: int) -> None:
        self._attempt(request, f"{reply.status} {escape_control(reply.reason)}", started, reply.request_id, attempt, attempts)
        if self.verbose >= 2:
            self._headers("<", reply.headers)
            if reply.body:
                self._body("<", reply.body)

    def failure(
        self, request: httpx.Request, exc: httpx.HTTPError, started: float, request_id: str, attempt: int, attempts: int
    ) -> None:
        self._attempt(request, f"{type(exc).__name__}: {escape_control(str(exc))}", started, request_id, attempt, attempts)

    def _attempt(self, request: httpx.Request, result: str, started: float, request_id: str, attempt: int, attempts: int) -> None:
        if self.verbose < 1:
            return
        elapsed = (time.monotonic() - started) * 1000
        self._write(
            f"{request.method} {_display_url(request.url)} -> {result} "
            f"({elapsed:.0f} ms, request id {request_id}, attempt {attempt}/{attempts})"
        )

    def retry(self, state: tenacity.RetryCallState, attempts: int) -> None:
        if self.verbose < 1 or state.outcome is None:
            return
        if state.outcome.failed:
            what = type(state.outcome.exception()).__name__
        else:
            what = f"HTTP {state.outcome.result().status}"
        self._write(f"retrying in {state.upcoming_sleep:.1f} s after {what} (attempt {state.attempt_number + 1}/{attempts} next)")

    def _headers(self, direction: str, headers: httpx.Headers) -> None:
        for name, value in headers.items():
            shown = REDACTED if name.lower() in _SECRET_HEADERS else redact_jwts(value)
            self._write(f"{direction} {escape_control(name)}: {escape_control(shown)}")

    def _body(self, direction: str, body: bytes) -> None:
        ok, data = _decode_json(body)
        if ok:
            text = _dumps(redact(data))
        else:
            text = redact_jwts(body[:_LOGGED_BODY_CHARS].decode("utf-8", errors="replace"))
        if len(text) > _LOGGED_BODY_CHARS:
            text = text[:_LOGGED_BODY_CHARS] + f"... ({len(body)} bytes in all)"
        self._write(f"{direction} {escape_control(text)}")
