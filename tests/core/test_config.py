"""The config file: defaults, the commented template, and clear errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mailkeep.config import DEFAULT_CONFIG_TOML, Config, load, parse_address, parse_size
from mailkeep.errors import ConfigError


def _uncommented(template: str) -> str:
    """The template with every commented setting switched on."""
    lines = []
    for line in template.splitlines():
        if line.startswith("# ") and " = " in line.split("#")[1]:
            line = line[2:].split("  #")[0]
        lines.append(line)
    return "\n".join(lines)


def test_template_shows_every_default(tmp_path: Path) -> None:
    text = _uncommented(DEFAULT_CONFIG_TOML).replace(
        'hostname = "mail.example.com"', 'hostname = "h.test"'
    )
    (tmp_path / "mailkeep.toml").write_text(text)
    loaded = load(tmp_path)
    assert loaded == Config(hostname="h.test", data_dir=tmp_path)
    settings = tomllib.loads(text)
    for section in ("listeners", "tls", "store", "limits", "auth", "pop3"):
        names = set(getattr(Config(), section).__dataclass_fields__)
        assert set(settings[section]) == names, section


def test_template_as_written_loads_to_defaults(tmp_path: Path) -> None:
    (tmp_path / "mailkeep.toml").write_text(DEFAULT_CONFIG_TOML)
    assert load(tmp_path).listeners == Config().listeners


def test_unknown_setting_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "mailkeep.toml").write_text("[limits]\nmax_lines = 5\n")
    with pytest.raises(ConfigError, match=r"unknown setting.*max_lines"):
        load(tmp_path)


def test_wrong_type_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "mailkeep.toml").write_text("[limits]\nmax_line = 'big'\n")
    with pytest.raises(ConfigError, match="max_line must be int"):
        load(tmp_path)


@pytest.mark.parametrize(("value", "octets"), [('"1G"', 2**30), ("0", 0), ('"64M"', 2**26)])
def test_fetch_cache_size(tmp_path: Path, value: str, octets: int) -> None:
    (tmp_path / "mailkeep.toml").write_text(f"[limits]\nfetch_cache = {value}\n")
    assert load(tmp_path).limits.fetch_cache_octets == octets


@pytest.mark.parametrize("value", ['"lots"', '"none"', '"-1M"'])
def test_fetch_cache_must_be_a_size(tmp_path: Path, value: str) -> None:
    (tmp_path / "mailkeep.toml").write_text(f"[limits]\nfetch_cache = {value}\n")
    with pytest.raises(ConfigError, match=r"\[limits\] fetch_cache"):
        load(tmp_path)


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "mailkeep.toml").write_text("[limits\n")
    with pytest.raises(ConfigError, match=r"mailkeep\.toml"):
        load(tmp_path)


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path, tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:143", ("127.0.0.1", 143)),
        (":993", ("0.0.0.0", 993)),
        ("[::1]:110", ("::1", 110)),
        ("off", None),
        ("OFF", None),
    ],
)
def test_parse_address(text: str, expected: tuple[str, int] | None) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["143", "host:", "host:99999", "host:x"])
def test_parse_address_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_address(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2G", 2 * 1024**3),
        ("500M", 500 * 1024**2),
        ("100k", 102400),
        ("12345", 12345),
        ("1.5G", int(1.5 * 1024**3)),
        ("none", None),
        ("unlimited", None),
        ("10MB", 10 * 1024**2),
    ],
)
def test_parse_size(text: str, expected: int | None) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["lots", "-5", "5X"])
def test_parse_size_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_size(text)
