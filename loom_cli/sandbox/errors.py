"""The error every sandbox handler raises, rendered as the API's error body."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An HTTP error response: status, snake_case code, one-sentence message and optional details.

    `field` is copied into `details.field`, the path of the request value at fault
    (`limit`, `inputs[0].path`, `Idempotency-Key`).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = {} if field is None else {"field": field}
        self.details.update(details or {})
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def bad_request(message: str, *, field: str | None = None, code: str = "invalid_request") -> ApiError:
    return ApiError(400, code, message, field=field)


def unprocessable(message: str, *, field: str | None = None, code: str = "invalid_request", details: dict[str, Any] | None = None) -> ApiError:
    return ApiError(422, code, message, field=field, details=details)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def conflict(code: str, message: str) -> ApiError:
    return ApiError(409, code, message)


def unauthorized(message: str, code: str = "unauthorized") -> ApiError:
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if code == "unauthorized" else {}
    return ApiError(401, code, message, headers=headers)
