"""The server's ed25519 signing key, kept in a file in Synapse's format.

The format (`ed25519 <version> <base64 seed>` per line) lets an admin move a key
between Hearth and Synapse.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from signedjson.key import generate_signing_key, read_signing_keys, write_signing_keys
from signedjson.types import SigningKey


def create_signing_key_file(path: Path) -> None:
    key = generate_signing_key("a_" + secrets.token_hex(2))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        write_signing_keys(f, [key])


def load_signing_key(path: Path) -> SigningKey:
    with path.open() as f:
        keys = read_signing_keys(f)
    if not keys:
        raise ValueError(f"no signing key in {path}")
    return keys[0]
