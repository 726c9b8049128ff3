"""Ethereum address checks shared by the CLI and the sandbox."""

from __future__ import annotations

import functools
import re

from loom_cli.errors import UsageError

_HEX_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


# Cached because the same few addresses are checked on every sandbox request and every listed job.
@functools.lru_cache(maxsize=4096)
def to_checksum(address: str) -> str:
    """Return the EIP-55 checksummed form of a 0x-prefixed 40-hex-digit address.

    Uses eth-hash's Keccak-256 directly: importing eth_utils costs about 0.3 s,
    too much for `jobs list --mine`.
    """
    from eth_hash.auto import keccak

    digits = address[2:].lower()
    digest = keccak(digits.encode("ascii")).hex()
    checksummed = "".join(
        ch.upper() if ch.isalpha() and int(digest[i], 16) >= 8 else ch for i, ch in enumerate(digits)
    )
    return "0x" + checksummed


def is_valid_address(value: str) -> bool:
    """Accept all-lowercase or all-uppercase hex as is; mixed case must be a valid EIP-55 checksum."""
    if not isinstance(value, str) or not _HEX_ADDRESS.match(value):
        return False
    digits = value[2:]
    if digits == digits.lower() or digits == digits.upper():
        return True
    return to_checksum(value) == value


def normalize_address(value: str, *, what: str = "address") -> str:
    """Validate `value` and return it checksummed, or raise a UsageError naming it."""
    candidate = value.strip()
    if not is_valid_address(candidate):
        raise UsageError(
            f"invalid {what} {value!r}",
            hint="give 0x followed by 40 hex digits; mixed case must be a valid EIP-55 checksum",
        )
    return to_checksum(candidate)
