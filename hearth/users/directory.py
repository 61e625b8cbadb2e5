"""The user directory: POST /user_directory/search.

Which users a searcher may find (users.yaml leaves the subset to the server
beyond a minimum): users sharing a joined room with the searcher, users joined
to rooms with a public join rule or world-readable history, and, when the
server is configured with `user_directory_search_all_users`, every active
local user (off by default: an account that is in no public room stays
unlisted). Matching is case-insensitive on user IDs and local display names;
every word of the term must occur in one of them.

Ranking: a match at the start of the display name or of the user ID's
localpart first, then a match at the start of any word of the display name,
then the rest; users with a display name or avatar before those without, then
by user ID. Up to `_CANDIDATES` matches (by user ID) are ranked, so on a huge
server a very short term ranks a subset; `limited` is true whenever more
matches exist than were returned.
"""

from __future__ import annotations

import re
from typing import Any

from hearth.storage.db import Database
from hearth.storage.user_directory import DirectoryEntry, UserDirectoryStore

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
_CANDIDATES = 500
_MAX_WORDS = 8
_WORD = re.compile(r"[^\s]+")


def _rank(entry: DirectoryEntry, term: str, first_word: str) -> int:
    localpart = entry.user_id[1:].split(":", 1)[0].lower()
    name = (entry.display_name or "").lower()
    if name.startswith(term) or localpart.startswith(term) or entry.user_id.lower().startswith(term):
        return 0
    if any(part.startswith(first_word) for part in re.split(r"[\s._\-=/]+", f"{name} {localpart}")):
        return 1
    return 2


class UserDirectory:
    def __init__(self, *, db: Database, store: UserDirectoryStore, search_all_users: bool = False) -> None:
        self._db = db
        self._store = store
        self._search_all_users = search_all_users

    async def search(self, searcher: str, term: str, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
        """{"results": [{user_id, display_name?, avatar_url?}], "limited": bool}."""
        term = term.strip().lower()
        words = list(dict.fromkeys(_WORD.findall(term)))[:_MAX_WORDS]
        if not words or limit <= 0:
            return {"results": [], "limited": bool(words)}
        async with self._db.read() as conn:
            found = await self._store.search(
                conn, searcher, words, all_local=self._search_all_users, limit=_CANDIDATES
            )
        ranked = sorted(
            found,
            key=lambda e: (
                _rank(e, term, words[0]), e.display_name is None and e.avatar_url is None, e.user_id
            ),
        )
        results = []
        for entry in ranked[:limit]:
            item: dict[str, Any] = {"user_id": entry.user_id}
            if entry.display_name is not None:
                item["display_name"] = entry.display_name
            if entry.avatar_url is not None:
                item["avatar_url"] = entry.avatar_url
            results.append(item)
        return {"results": results, "limited": len(found) > limit}
