"""Creating accounts from outside: client registration and shared-secret admin registration.

Client registration (`RegistrationService.register`) runs the spec's order:
policy (open? rate limit?), then the username checks the spec says must come
before user-interactive auth, then UIA (`m.login.dummy`, or
`m.login.registration_token` when the server requires tokens), then the
account, then (unless `inhibit_login`) a device and tokens. A registration
token's use is reserved by the UIA stage and here either marked completed or
given back if the account could not be created.

Shared-secret registration (`SharedSecretRegistration`) lets admin tools create
users with an HMAC-SHA1 over a server-issued nonce. Nonces are single use, even
when the MAC is wrong, expire after a minute, and live in memory: a restart only
forces the tool to ask for a new one.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from hearth.clock import Clock, IdGenerator
from hearth.errors import MatrixError, forbidden, invalid_param, not_found
from hearth.ratelimit import Ratelimiters
from hearth.storage.registration_tokens import RegistrationToken, RegistrationTokensStore, TokenExists
from hearth.users.accounts import AccountService
from hearth.users.sessions import IssuedTokens, SessionService
from hearth.users.uia import DUMMY, REGISTRATION_TOKEN, UIAService, is_token_string

REGISTER_PURPOSE = "register"
MAX_PASSWORD_LENGTH = 512
MAX_DEVICE_ID_LENGTH = 255
_RANDOM_LOCALPART_ATTEMPTS = 10


@dataclass(frozen=True, slots=True)
class RegistrationRequest:
    """What a client asked for, already shape-checked by the API layer."""

    username: str | None
    password: str | None
    auth: object
    device_id: str | None = None
    initial_device_display_name: str | None = None
    inhibit_login: bool = False
    refresh_token: bool = False


@dataclass(frozen=True, slots=True)
class Registered:
    user_id: str
    tokens: IssuedTokens | None


class RegistrationService:
    def __init__(self, *, enabled: bool, requires_token: bool, accounts: AccountService,
                 sessions: SessionService, uia: UIAService, tokens: RegistrationTokensStore,
                 ratelimiters: Ratelimiters, ids: IdGenerator, clock: Clock) -> None:
        self._enabled = enabled
        self._requires_token = requires_token
        self._accounts = accounts
        self._sessions = sessions
        self._uia = uia
        self._tokens = tokens
        self._limits = ratelimiters
        self._ids = ids
        self._clock = clock

    @property
    def flows(self) -> list[list[str]]:
        return [[REGISTRATION_TOKEN]] if self._requires_token else [[DUMMY]]

    def require_enabled(self) -> None:
        if not self._enabled:
            raise forbidden("Registration has been disabled on this homeserver")

    async def check_username(self, username: str) -> str:
        """The user ID `username` would get, if it is valid and free (for /register/available)."""
        self.require_enabled()
        return await self._accounts.check_available(username.lower())

    async def token_is_valid(self, token: str, remote: str | None) -> bool:
        self.require_enabled()
        self._limits.registration_per_address.check(remote or "")
        found = await self._tokens.get(token)
        return found is not None and found.usable(self._clock.time_ms())

    async def register(self, req: RegistrationRequest, *, remote: str | None) -> Registered:
        self.require_enabled()
        self._limits.registration_per_address.check(remote or "")
        localpart = req.username.lower() if req.username is not None else None
        if localpart is not None:
            # The spec wants these answered before any auth is asked for.
            await self._accounts.check_available(localpart)
        if req.auth is not None:
            _check_password(req.password)
        if req.device_id is not None and not 0 < len(req.device_id) <= MAX_DEVICE_ID_LENGTH:
            raise MatrixError(400, "M_INVALID_PARAM", "device_id must be 1 to 255 characters")

        result = await self._uia.authenticate(req.auth, purpose=REGISTER_PURPOSE, flows=self.flows,
                                              remote=remote)
        token = result.registration_token
        try:
            _check_password(req.password)
            user_id = await self._create(localpart, req.password)
        except Exception:
            if token is not None:
                await self._tokens.release_now(token)
            raise
        if token is not None:
            await self._tokens.complete(token)
        if req.inhibit_login:
            return Registered(user_id, None)
        tokens = await self._sessions.issue(user_id, device_id=req.device_id,
                                            display_name=req.initial_device_display_name,
                                            with_refresh=req.refresh_token)
        return Registered(user_id, tokens)

    # --- registration tokens, for admins -------------------------------------

    async def create_token(self, *, token: str | None, uses_allowed: int | None, expiry_ts: int | None,
                           length: int) -> RegistrationToken:
        """Create a token (random of `length` characters unless given)."""
        if token is not None and not is_token_string(token):
            raise invalid_param("token must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', '~' and '-'")
        if not 0 < length <= 64:
            raise invalid_param("length must be between 1 and 64")
        self._check_token_limits(uses_allowed, expiry_ts)
        if token is not None:
            try:
                return await self._tokens.create(token, uses_allowed=uses_allowed, expiry_ts=expiry_ts)
            except TokenExists:
                raise invalid_param(f"Token already exists: {token}") from None
        while True:
            candidate = (self._ids.secret("") + self._ids.secret(""))[:length]
            try:
                return await self._tokens.create(candidate, uses_allowed=uses_allowed, expiry_ts=expiry_ts)
            except TokenExists:
                continue

    async def update_token(self, token: str, *, uses_allowed: int | None, expiry_ts: int | None,
                           set_uses: bool, set_expiry: bool) -> RegistrationToken:
        self._check_token_limits(uses_allowed if set_uses else None, expiry_ts if set_expiry else None)
        updated = await self._tokens.update(token, uses_allowed=uses_allowed, expiry_ts=expiry_ts,
                                            set_uses=set_uses, set_expiry=set_expiry)
        if updated is None:
            raise not_found(f"No such registration token: {token}")
        return updated

    async def get_token(self, token: str) -> RegistrationToken:
        found = await self._tokens.get(token)
        if found is None:
            raise not_found(f"No such registration token: {token}")
        return found

    async def list_tokens(self, valid: bool | None) -> list[RegistrationToken]:
        return await self._tokens.list_tokens(valid=valid, now_ms=self._clock.time_ms())

    async def delete_token(self, token: str) -> None:
        if not await self._tokens.delete(token):
            raise not_found(f"No such registration token: {token}")

    def _check_token_limits(self, uses_allowed: int | None, expiry_ts: int | None) -> None:
        if uses_allowed is not None and uses_allowed < 0:
            raise invalid_param("uses_allowed must be a non-negative integer or null")
        if expiry_ts is not None and expiry_ts < self._clock.time_ms():
            raise invalid_param("expiry_time must not be in the past")

    async def _create(self, localpart: str | None, password: str | None) -> str:
        if localpart is not None:
            return await self._accounts.create_account(localpart, password)
        for _ in range(_RANDOM_LOCALPART_ATTEMPTS):
            candidate = self._ids.device_id().lower()
            try:
                return await self._accounts.create_account(candidate, password)
            except MatrixError as e:
                if e.errcode not in ("M_USER_IN_USE", "M_EXCLUSIVE"):
                    raise
        raise MatrixError(500, "M_UNKNOWN", "Could not pick a free user ID")


def _check_password(password: str | None) -> None:
    if password is None:
        raise MatrixError(400, "M_MISSING_PARAM", "Missing parameter: password")
    if not password:
        raise MatrixError(400, "M_WEAK_PASSWORD", "Password must not be empty")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise MatrixError(400, "M_INVALID_PARAM", f"Password is longer than {MAX_PASSWORD_LENGTH} characters")


class SharedSecretRegistration:
    """Synapse-compatible `/_synapse/admin/v1/register` (used by `register_new_matrix_user`)."""

    NONCE_LIFETIME_MS = 60_000
    _MAX_NONCES = 10_000

    def __init__(self, *, secret: str | None, accounts: AccountService, sessions: SessionService,
                 ids: IdGenerator, clock: Clock) -> None:
        self._secret = secret.encode() if secret else None
        self._accounts = accounts
        self._sessions = sessions
        self._ids = ids
        self._clock = clock
        self._nonces: dict[str, int] = {}  # nonce -> expiry (ms)

    def _require_secret(self) -> bytes:
        if self._secret is None:
            raise MatrixError(400, "M_UNKNOWN", "Shared secret registration is not enabled")
        return self._secret

    def new_nonce(self) -> str:
        self._require_secret()
        now = self._clock.time_ms()
        if len(self._nonces) >= self._MAX_NONCES:
            self._nonces = {n: exp for n, exp in self._nonces.items() if exp > now}
        nonce = self._ids.secret("")
        self._nonces[nonce] = now + self.NONCE_LIFETIME_MS
        return nonce

    async def register(self, *, nonce: str, username: str, password: str, admin: bool, mac: str,
                       displayname: str | None) -> IssuedTokens:
        secret = self._require_secret()
        expiry = self._nonces.pop(nonce, None)  # single use, whatever happens next
        if expiry is None or expiry <= self._clock.time_ms():
            raise MatrixError(400, "M_UNKNOWN", "Unrecognised nonce")
        want = mac_for(secret, nonce=nonce, username=username, password=password, admin=admin)
        if not hmac.compare_digest(want.encode(), mac.encode()):
            raise forbidden("HMAC incorrect")
        _check_password(password)
        user_id = await self._accounts.create_account(username.lower(), password, admin=admin,
                                                      displayname=displayname)
        return await self._sessions.issue(user_id, device_id=None, display_name=None, with_refresh=False)


def mac_for(secret: bytes, *, nonce: str, username: str, password: str, admin: bool) -> str:
    """HMAC-SHA1 hex over nonce NUL username NUL password NUL admin|notadmin."""
    mac = hmac.new(secret, digestmod=hashlib.sha1)
    for part in (nonce, username, password):
        mac.update(part.encode())
        mac.update(b"\x00")
    mac.update(b"admin" if admin else b"notadmin")
    return mac.hexdigest()

