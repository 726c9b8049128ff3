"""Make untrusted text (job names, server messages) safe to show on a terminal."""

from __future__ import annotations

import re
import unicodedata

# Bidi embedding, override and isolate controls (U+202A-U+202E, U+2066-U+2069)
# and the zero-width marks that can reorder or hide what a reader sees. Lone
# surrogates (from JSON such as "\ud800") are escaped too: stdout cannot encode them.
_BIDI = set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A)) | {0x200E, 0x200F, 0x061C}
_UNSAFE = re.compile(
    "[" + "".join(f"\\U{cp:08x}" for cp in sorted(_BIDI)) + "\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]"
)


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_control(text: str, *, keep_newlines: bool = False) -> str:
    """Show control, bidi and other non-printing characters as visible escapes.

    ESC, CSI, OSC, NUL and bidi overrides become `\\x1b`, `\\x9b`, `\\u202e` and
    so on, so no terminal sequence in `text` reaches the terminal. Tabs stay;
    newlines stay only when `keep_newlines` is true.
    """
    escaped = _UNSAFE.sub(_escape_char, text)
    if not keep_newlines:
        escaped = escaped.replace("\n", "\\n")
    # Unicode "format" characters outside the ranges above (Cf), such as
    # zero-width joiners, are shown too, so two names never look identical.
    if any(unicodedata.category(ch) == "Cf" for ch in escaped):
        escaped = "".join(
            f"\\u{ord(ch):04x}" if unicodedata.category(ch) == "Cf" else ch for ch in escaped
        )
    return escaped
