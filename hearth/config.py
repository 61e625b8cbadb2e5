"""Server configuration: a YAML file parsed into typed, validated settings.

One `HearthConfig` object is read at start-up and handed to `build_app`; nothing
reads the file or environment anywhere else. Keys follow Synapse's names where
admins already know them (`server_name`, `enable_registration`,
`registration_shared_secret`, `listeners`), so an admin's habits carry over.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from pathlib import Path
from typing import Literal

import yaml

from hearth.validation import Model, ValidationError, field, field_validator

Resource = Literal["client", "federation", "media", "metrics", "admin"]
DEFAULT_RESOURCES: tuple[Resource, ...] = ("client", "federation", "media", "admin")


class ConfigError(Exception):
    """The configuration file is missing, unreadable or invalid."""


class _Model(Model, extra="forbid"):
    """A config section: a key no field names is a mistake, so it is refused."""


class TLSConfig(_Model):
    certificate_path: Path
    private_key_path: Path


class ListenerConfig(_Model):
    bind_address: str = "127.0.0.1"
    port: int = field(default=8008, ge=0, le=65535)
    tls: TLSConfig | None = None
    resources: list[Resource] = field(default_factory=lambda: list(DEFAULT_RESOURCES))


class DatabaseConfig(_Model):
    # sqlite:///path/to/file.db or postgresql://user:pass@host:port/db
    url: str
    # Connections kept open once opened (they open on demand). PostgreSQL may
    # open as many again for a burst, but closes those on return: size it to
    # the server's usual concurrency, or busy periods pay a connection per request.
    pool_size: int = field(default=25, ge=1)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not url.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError("database url must start with sqlite:// or postgresql://")
        return url


class Argon2Config(_Model):
    """argon2id cost. The defaults follow OWASP's guidance; tests lower them."""

    time_cost: int = field(default=2, ge=1)
    memory_cost_kib: int = field(default=19456, ge=8)
    parallelism: int = field(default=1, ge=1)


class RateLimit(_Model):
    """A token bucket: `per_second` refill rate and `burst` capacity."""

    per_second: float = field(gt=0)
    burst: int = field(ge=1)


class RateLimitsConfig(_Model):
    enabled: bool = True
    login_per_address: RateLimit = RateLimit(per_second=0.2, burst=5)
    login_per_account: RateLimit = RateLimit(per_second=0.05, burst=5)
    failed_login_per_account: RateLimit = RateLimit(per_second=0.05, burst=5)
    registration_per_address: RateLimit = RateLimit(per_second=0.2, burst=5)


class LoggingConfig(_Model):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["plain", "json"] = "plain"


class PushConfig(_Model):
    """Push notification delivery to push gateways."""

    # Send message content to gateways (pushers with format event_id_only never get it).
    include_content: bool = True
    # Gateways at these addresses are refused, as IP literals and as what their
    # host names resolve to: a client-chosen URL must not reach our own network.
    # An empty list allows every address.
    gateway_ip_blocklist: list[str] = field(default_factory=lambda: [
        "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
        "169.254.0.0/16", "0.0.0.0/8", "::1/128", "fc00::/7", "fe80::/10", "::/128",
    ])
    request_timeout_s: float = field(default=30.0, gt=0)
    # A failed push is retried after retry_initial_ms, doubling up to retry_max_ms,
    # at most retry_attempts times in all; then it is dropped.
    retry_initial_ms: int = field(default=1000, ge=1)
    retry_max_ms: int = field(default=5 * 60 * 1000, ge=1)
    retry_attempts: int = field(default=10, ge=1, le=100)

    @field_validator("gateway_ip_blocklist")
    @classmethod
    def _networks(cls, ranges: list[str]) -> list[str]:
        for r in ranges:
            ipaddress.ip_network(r, strict=False)
        return ranges


class PresenceConfig(_Model):
    """Presence (online/unavailable/offline). Off: updates are accepted and ignored, sync carries none."""

    enabled: bool = True
    # Online users with no activity for this long are shown as unavailable (idle).
    idle_after_ms: int = field(default=5 * 60 * 1000, ge=1000)
    # Users with no sync in flight and none for this long are shown as offline.
    offline_after_ms: int = field(default=60 * 1000, ge=1000)


class HearthConfig(_Model):
    server_name: str
    # Where clients reach us; advertised in /.well-known/matrix/client.
    public_baseurl: str | None = None
    signing_key_path: Path
    data_dir: Path
    media_store_path: Path | None = None
    database: DatabaseConfig
    listeners: list[ListenerConfig] = field(default_factory=lambda: [ListenerConfig()])
    # Served at /.well-known/matrix/server when set, e.g. "matrix.example.org:443".
    serve_server_wellknown: str | None = None

    enable_registration: bool = False
    registration_requires_token: bool = False
    registration_shared_secret: str | None = None
    # Localparts nobody may register (M_EXCLUSIVE), e.g. for bridges or staff.
    reserved_usernames: list[str] = field(default_factory=list)

    argon2: Argon2Config = Argon2Config()
    rate_limits: RateLimitsConfig = RateLimitsConfig()
    # Lifetime of access tokens issued with a refresh token; None = no refresh tokens.
    refreshable_access_token_lifetime_ms: int = field(default=5 * 60 * 1000, ge=1000)
    uia_session_timeout_ms: int = field(default=15 * 60 * 1000, ge=1000)
    max_request_body_bytes: int = field(default=1024 * 1024, ge=1024)
    max_upload_size_bytes: int = field(default=50 * 1024 * 1024, ge=1024)
    # The user directory also lists local users who share no room with the searcher.
    user_directory_search_all_users: bool = False
    logging: LoggingConfig = LoggingConfig()
    presence: PresenceConfig = PresenceConfig()
    push: PushConfig = PushConfig()

    @property
    def client_base_url(self) -> str:
        if self.public_baseurl:
            return self.public_baseurl.rstrip("/") + "/"
        first = self.listeners[0] if self.listeners else ListenerConfig()
        scheme = "https" if first.tls else "http"
        return f"{scheme}://{url_host(first.bind_address)}:{first.port}/"


def url_host(host: str) -> str:
    """`host` as it goes into a URL: IPv6 literals in brackets, wildcards as localhost.

    A wildcard bind address (0.0.0.0, ::) is where we listen, not an address a
    client can use; localhost is the one address it certainly reaches us on.
    """
    if host in ("", "0.0.0.0", "::"):
        return "localhost"
    return f"[{host}]" if ":" in host else host


def load_config(path: Path) -> HearthConfig:
    """Read and validate a config file; relative paths are taken from its folder."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    base = path.parent.resolve()
    for key in ("signing_key_path", "data_dir", "media_store_path"):
        if isinstance(raw.get(key), str) and not Path(raw[key]).is_absolute():
            raw[key] = str(base / raw[key])
    db = raw.get("database")
    if isinstance(db, dict) and isinstance(db.get("url"), str):
        db["url"] = _absolute_sqlite_url(db["url"], base)
    try:
        return HearthConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{path}: invalid configuration: {e}") from e


def _absolute_sqlite_url(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
        return prefix + str(base / url[len(prefix):])
    return url


def generate_config_text(
    *,
    server_name: str,
    data_dir: Path,
    listen_host: str = "127.0.0.1",
    listen_port: int = 8008,
    database_url: str | None = None,
    enable_registration: bool = False,
) -> str:
    """A commented hearth.yaml an admin can read and edit.

    Every value that comes from the caller is written as a quoted YAML scalar:
    a password with `#` or `: ` in a database URL, or a folder name with
    spaces, must come back unchanged when the file is loaded.
    """
    db_url = database_url or f"sqlite:///{(data_dir / 'hearth.db').resolve()}"
    secret = secrets.token_urlsafe(32)
    data = data_dir.resolve()
    q = _yaml_str
    return f"""\
# Hearth homeserver configuration.
# Every key is documented in docs/configuration.md; unknown keys are rejected.

# The domain part of your users' IDs (@alice:{server_name}). It cannot change later.
server_name: {q(server_name)}

# Where clients reach this server (advertised in /.well-known/matrix/client).
public_baseurl: {q(f'http://{url_host(listen_host)}:{listen_port}/')}

# Folder for the database (SQLite), media and keys.
data_dir: {q(str(data))}
signing_key_path: {q(str(data / 'signing.key'))}
media_store_path: {q(str(data / 'media'))}

database:
  # sqlite:///absolute/path.db (embedded) or postgresql://user:password@host:port/dbname
  url: {q(db_url)}
  # Connections kept open once opened: at least the requests served at once.
  # pool_size: 25

# One entry per socket. resources: client, federation, media, admin, metrics.
# Add `tls: {{certificate_path: ..., private_key_path: ...}}` to serve HTTPS.
listeners:
  - bind_address: {q(listen_host)}
    port: {listen_port}
    resources: [client, federation, media, admin, metrics]

# Anyone may create an account when true. Keep it false on a public server unless
# you also set registration_requires_token.
enable_registration: {'true' if enable_registration else 'false'}
registration_requires_token: false

# Lets admin tools create users through /_synapse/admin/v1/register. Keep it secret.
registration_shared_secret: {q(secret)}

# Password hashing cost (argon2id).
argon2:
  time_cost: 2
  memory_cost_kib: 19456
  parallelism: 1

rate_limits:
  enabled: true

logging:
  level: INFO
  # plain or json (one JSON object per line)
  format: plain
"""


def _yaml_str(value: str) -> str:
    """A double-quoted YAML scalar (JSON's string syntax is valid YAML)."""
    return json.dumps(value, ensure_ascii=False)
