"""Time in the sandbox: integer microseconds since the Unix epoch, shown as RFC 3339 UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def format_micros(micros: int) -> str:
    """Format as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, always six fraction digits."""
    moment = _EPOCH + timedelta(microseconds=micros)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_seconds(seconds: float) -> str:
    return format_micros(to_micros(seconds))
