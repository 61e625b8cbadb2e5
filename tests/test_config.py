"""Loading hearth.yaml: a mistake is refused with the key it is at, never half-applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.config import ConfigError, load_config

_BASE = 'server_name: example.org\nsigning_key_path: signing.key\ndata_dir: data\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hearth.yaml"
    path.write_text(_BASE + text)
    return path


def test_relative_paths_are_taken_from_the_config_folder(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'database: {url: "sqlite:///hearth.db"}\n'
                                         'rate_limits: {login_per_address: {per_second: 1, burst: 2}}\n'))
    assert config.data_dir == tmp_path.resolve() / "data"
    assert config.database.url == f"sqlite:///{tmp_path.resolve() / 'hearth.db'}"
    assert config.rate_limits.login_per_address.per_second == 1.0  # an integer is taken for a rate
    assert config.listeners[0].port == 8008


@pytest.mark.parametrize(("text", "where"), [
    ('database: {url: "sqlite:///x.db", bogus: 1}\n', "database.bogus: unknown key"),
    ('database: {url: "mysql://x"}\n', "database.url: database url must start with"),
    ('database: {url: "sqlite:///x.db"}\nlisteners: [{port: 70000}]\n', "listeners.0.port: must be at most"),
    ('database: {url: "sqlite:///x.db"}\nlogging: {level: LOUD}\n', "logging.level: expected one of"),
    ('database: {url: "sqlite:///x.db"}\nenable_registration: "yes please"\n',
     "enable_registration: expected true or false"),
    ('database: {url: "sqlite:///x.db"}\npush: {gateway_ip_blocklist: ["not a network"]}\n',
     "push.gateway_ip_blocklist"),
    ("", "database: this field is required"),
])
def test_a_mistake_is_named_by_where_it_is(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(ConfigError, match="invalid configuration") as info:
        load_config(write(tmp_path, text))
    assert where in str(info.value)
