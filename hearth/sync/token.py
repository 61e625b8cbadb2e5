"""Sync tokens: one position per stream, so a client can resume exactly.

Format: ``s{events}_{account_data}_{receipts}_{typing}_{to_device}_{device_lists}_{presence}``.
Every field is a position on its own monotonic stream. A token stays valid
across restarts because every position comes from the database (or, for
typing, restarts from zero and is compared only within one process). The
leading ``s{events}`` is also a valid `/messages` pagination token: it means
"the room as of this stream position".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from hearth.errors import invalid_param

_TOKEN = re.compile(r"s(\d{1,19})((?:_\d{1,19}){6})")


@dataclass(frozen=True, slots=True)
class SyncToken:
    events: int = 0
    account_data: int = 0
    receipts: int = 0
    typing: int = 0
    to_device: int = 0
    device_lists: int = 0
    presence: int = 0

    def __str__(self) -> str:
        values = [getattr(self, f.name) for f in fields(self)]
        return "s" + "_".join(str(v) for v in values)

    @classmethod
    def parse(cls, raw: str) -> SyncToken:
        m = _TOKEN.fullmatch(raw)
        if m is None:
            raise invalid_param("Malformed sync token in 'since'")
        values = [int(m.group(1)), *(int(v) for v in m.group(2)[1:].split("_"))]
        return cls(*values)

    def advanced_past(self, other: SyncToken) -> bool:
        """True if any stream here is beyond `other`."""
        return any(getattr(self, f.name) > getattr(other, f.name) for f in fields(self))
