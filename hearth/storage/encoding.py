"""Text that both engines will store.

PostgreSQL rejects NUL in text columns, and neither engine can encode a lone
surrogate as UTF-8; JSON request bodies can carry both ("\\u0000", "\\ud800").
Services check client strings with `is_storable_text` and JSON values they
will serve back with `is_encodable_json`; stores serialise JSON with
`dumps_storable`, so such input is a 400 or is escaped, never a 500.
"""

from __future__ import annotations

import json
from typing import Any


def is_storable_text(value: str) -> bool:
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_encodable_json(value: Any) -> bool:
    """Whether a decoded JSON value can be sent back as UTF-8 (no lone surrogates)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def dumps_storable(value: Any) -> str:
    """Compact JSON text; non-ASCII stays readable unless it holds a lone surrogate.

    Control characters, NUL included, are always escaped by `json.dumps`; only
    values with lone surrogates are stored fully ASCII-escaped.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":"))
    return text
