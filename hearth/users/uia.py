"""User-interactive authentication (UIA): the engine every sensitive endpoint shares.

An endpoint calls `UIAService.authenticate(auth, purpose=..., flows=..., user_id=...)`
with the raw `auth` value of its request body. Either the flows are complete and
a `UIAResult` comes back, or `UIARequired` (a 401 `MatrixError`) is raised whose
body is the spec's `{flows, params, session, completed}` plus `errcode`/`error`
when the stage just attempted failed.

Design notes:
- A session is bound to its `purpose` (e.g. "register" or
  "delete_devices:@u:hs:DEV1,DEV2") and to the `user_id` it authenticates for, so a
  session completed for one operation cannot be replayed for another.
- Sessions live in the database (a restart mid-flow keeps them), expire
  `timeout_ms` after creation (on the injected clock), and are consumed (deleted)
  by the request that completes a flow, in the same transaction that records its
  last stage. A replayed completed session is therefore unknown.
- A first request that carries a completing stage and no session (matrix-nio
  registers with `{"type": "m.login.dummy"}`) succeeds without ever storing a
  session.
- `m.login.registration_token` reserves one `pending` use of the token in the
  transaction that records the stage. The caller turns it into a completed use
  (`RegistrationTokensStore.complete`) or gives it back (`release_now`) once it
  knows whether the operation succeeded; expired sessions give theirs back when
  they are swept.
- Password checking is delegated to a `PasswordChecker` (the login service) so
  UIA and /login apply the same identifier rules and failed-attempt limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from hearth.clock import Clock, IdGenerator
from hearth.errors import MatrixError
from hearth.storage.db import Database, DbConnection
from hearth.storage.registration_tokens import RegistrationTokensStore
from hearth.storage.uia import UIASessionRow, UIASessionsStore

DUMMY = "m.login.dummy"
PASSWORD = "m.login.password"
REGISTRATION_TOKEN = "m.login.registration_token"
KNOWN_STAGES = (DUMMY, PASSWORD, REGISTRATION_TOKEN)

# Keys of the session's data column. Stage data returned to callers is the rest.
_BOUND_USER = "bound_user_id"
# The spec's opaque identifier grammar, at most 64 characters for tokens.
_TOKEN_RE = re.compile(r"^[A-Za-z0-9._~-]{1,64}$")
_SWEEP_INTERVAL_S = 60.0


def is_token_string(token: object) -> bool:
    """Whether `token` fits the grammar of registration tokens."""
    return isinstance(token, str) and _TOKEN_RE.match(token) is not None


class PasswordChecker(Protocol):
    async def check_password(self, identifier: dict[str, Any], password: str) -> str:
        """The user ID the credentials belong to, or a 403 M_FORBIDDEN MatrixError."""
        ...


@dataclass(frozen=True, slots=True)
class UIAResult:
    """A completed flow: its session and what the stages established.

    `data` holds stage results, e.g. {"registration_token": "abc"};
    `authenticated_user` is the user a password stage proved, if any.
    """

    session_id: str
    completed: list[str]
    data: dict[str, Any] = field(default_factory=dict)
    authenticated_user: str | None = None

    @property
    def registration_token(self) -> str | None:
        token = self.data.get("registration_token")
        return token if isinstance(token, str) else None


class UIARequired(MatrixError):
    """401: more auth is needed. The body is the spec's UIA response."""

    def __init__(self, *, session_id: str, flows: list[list[str]], completed: list[str],
                 params: dict[str, Any] | None = None, errcode: str | None = None,
                 error: str | None = None) -> None:
        super().__init__(401, errcode or "M_UNAUTHORIZED", error or "Additional authentication required")
        self.session_id = session_id
        self.flows = flows
        self.completed = completed
        self.params = params or {}
        self.failed = errcode is not None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "flows": [{"stages": list(f)} for f in self.flows],
            "params": self.params,
            "session": self.session_id,
            "completed": list(self.completed),
        }
        if self.failed:
            body["errcode"] = self.errcode
            body["error"] = self.error
        return body


class _StageFailed(Exception):
    def __init__(self, errcode: str, error: str) -> None:
        super().__init__(error)
        self.errcode = errcode
        self.error = error


class UIAService:
    def __init__(self, *, db: Database, sessions: UIASessionsStore, tokens: RegistrationTokensStore,
                 passwords: PasswordChecker, clock: Clock, ids: IdGenerator, timeout_ms: int) -> None:
        self._db = db
        self._sessions = sessions
        self._tokens = tokens
        self._passwords = passwords
        self._clock = clock
        self._ids = ids
        self._timeout_ms = timeout_ms
        self._last_sweep: float | None = None

    async def authenticate(self, auth: object, *, purpose: str, flows: list[list[str]],
                           user_id: str | None = None, remote: str | None = None) -> UIAResult:
        """Advance the UIA session in `auth`; return when a flow is complete, else raise UIARequired.

        `remote` (the client address) is accepted for stages that rate limit by
        address; the current stages limit by account instead.
        """
        await self._maybe_sweep()
        body = auth if isinstance(auth, dict) else {}
        session_id = body.get("session")
        if session_id is not None and not isinstance(session_id, str):
            raise MatrixError(400, "M_INVALID_PARAM", "auth.session must be a string")
        if session_id is None:
            session = UIASessionRow(self._ids.session_id(), self._clock.time_ms(), purpose,
                                    [], {_BOUND_USER: user_id})
            stored = False
        else:
            session = await self._load(session_id, purpose, user_id)
            stored = True

        stage = body.get("type")
        if stage is None:
            await self._store_new(session, stored)
            raise self._required(session, flows)
        if not isinstance(stage, str) or stage not in {s for f in flows for s in f}:
            await self._store_new(session, stored)
            raise self._required(session, flows, _StageFailed(
                "M_UNRECOGNIZED", f"Unrecognised or unsupported auth type: {stage}"))
        try:
            stage_data = await self._check_stage(stage, body, user_id)
        except _StageFailed as failure:
            await self._store_new(session, stored)
            raise self._required(session, flows, failure) from None
        return await self._record(session, stored, stage, stage_data, flows)

    # --- stages ------------------------------------------------------------

    async def _check_stage(self, stage: str, body: dict[str, Any], user_id: str | None) -> dict[str, Any]:
        """Validate one stage's submission (no side effects); returns data to keep in the session."""
        if stage == DUMMY:
            return {}
        if stage == PASSWORD:
            return {"authenticated_user": await self._check_password(body, user_id)}
        if stage == REGISTRATION_TOKEN:
            token = body.get("token")
            if not is_token_string(token):
                raise _StageFailed("M_UNAUTHORIZED", "Invalid registration token")
            return {"registration_token": token}
        raise _StageFailed("M_UNRECOGNIZED", f"Unsupported auth type: {stage}")

    async def _check_password(self, body: dict[str, Any], user_id: str | None) -> str:
        password = body.get("password")
        if not isinstance(password, str):
            raise _StageFailed("M_MISSING_PARAM", "Missing password")
        identifier = body.get("identifier")
        if identifier is None and isinstance(body.get("user"), str):
            identifier = {"type": "m.id.user", "user": body["user"]}
        if identifier is None and user_id is not None:
            identifier = {"type": "m.id.user", "user": user_id}
        if not isinstance(identifier, dict):
            raise _StageFailed("M_MISSING_PARAM", "Missing identifier")
        try:
            who = await self._passwords.check_password(identifier, password)
        except MatrixError as e:
            if e.status == 429:
                raise
            raise _StageFailed(e.errcode, e.error) from None
        if user_id is not None and who != user_id:
            raise _StageFailed("M_FORBIDDEN", "Invalid username or password")
        return who

    # --- session bookkeeping -------------------------------------------------

    async def _load(self, session_id: str, purpose: str, user_id: str | None) -> UIASessionRow:
        async with self._db.read() as conn:
            row = await self._sessions.get(conn, session_id)
        self._check_binding(row, purpose, user_id)
        assert row is not None
        return row

    def _check_binding(self, row: UIASessionRow | None, purpose: str, user_id: str | None) -> None:
        if row is None or row.created_ts + self._timeout_ms <= self._clock.time_ms():
            raise MatrixError(400, "M_UNKNOWN", "Unknown or expired auth session")
        if row.purpose != purpose or row.data.get(_BOUND_USER) != user_id:
            raise MatrixError(403, "M_FORBIDDEN",
                              "This auth session was started for a different request")

    async def _store_new(self, session: UIASessionRow, stored: bool) -> None:
        """Persist a session the client has just been told about, so it can continue it."""
        if not stored:
            async with self._db.write() as conn:
                await self._sessions.insert(conn, session)

    async def _record(self, session: UIASessionRow, stored: bool, stage: str, stage_data: dict[str, Any],
                      flows: list[list[str]]) -> UIAResult:
        """Record a passed stage; consume the session if that completes a flow."""
        purpose, user_id = session.purpose, session.data.get(_BOUND_USER)
        failure: _StageFailed | None = None
        done = False
        async with self._db.write() as conn:
            if stored:
                # Re-read under the write lock: a concurrent request may have
                # advanced or consumed the session since we loaded it.
                fresh = await self._sessions.get_for_update(conn, session.session_id)
                self._check_binding(fresh, purpose, user_id)
                assert fresh is not None
                session = fresh
            failure, stage_data = await self._apply_side_effects(conn, session, stage_data)
            if failure is None:
                if stage not in session.completed:
                    session.completed.append(stage)
                session.data.update(stage_data)
                done = any(set(f) <= set(session.completed) for f in flows)
            if done and stored and not await self._sessions.consume(conn, session.session_id):
                raise MatrixError(400, "M_UNKNOWN", "Unknown or expired auth session")
            if not done:
                if stored:
                    await self._sessions.save(conn, session)
                else:
                    await self._sessions.insert(conn, session)
        if not done:
            raise self._required(session, flows, failure)
        data = {k: v for k, v in session.data.items() if k not in (_BOUND_USER, "authenticated_user")}
        return UIAResult(session.session_id, list(session.completed), data,
                         session.data.get("authenticated_user"))

    async def _apply_side_effects(self, conn: DbConnection, session: UIASessionRow,
                                  stage_data: dict[str, Any]) -> tuple[_StageFailed | None, dict[str, Any]]:
        """Reserve a registration token use, once per session."""
        token = stage_data.get("registration_token")
        if token is None:
            return None, stage_data
        held = session.data.get("registration_token")
        if held is not None:
            return None, {**stage_data, "registration_token": held}
        if not await self._tokens.reserve(conn, token, self._clock.time_ms()):
            return _StageFailed("M_UNAUTHORIZED", "Invalid registration token"), stage_data
        return None, stage_data

    def _required(self, session: UIASessionRow, flows: list[list[str]],
                  failure: _StageFailed | None = None) -> UIARequired:
        return UIARequired(session_id=session.session_id, flows=flows, completed=list(session.completed),
                           errcode=failure.errcode if failure else None,
                           error=failure.error if failure else None)

    async def _maybe_sweep(self) -> None:
        """Delete expired sessions now and then, giving back the token uses they held."""
        now = self._clock.monotonic()
        if self._last_sweep is not None and now - self._last_sweep < _SWEEP_INTERVAL_S:
            return
        self._last_sweep = now
        await self.sweep_expired()

    async def sweep_expired(self) -> int:
        async with self._db.write() as conn:
            cutoff = self._clock.time_ms() - self._timeout_ms
            expired = await self._sessions.delete_created_before(conn, cutoff)
            for row in expired:
                token = row.data.get("registration_token")
                if isinstance(token, str):
                    await self._tokens.release(conn, token)
        return len(expired)
