"""Configuration: immutable dataclasses, read from TOML, every field with a documented default.

``mailkeep init`` writes ``DEFAULT_CONFIG_TOML`` (the same defaults, commented) into the
data directory. Unknown keys are an error, so that a typo is reported instead of
silently ignored.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mailkeep.errors import ConfigError

MB = 1024 * 1024
T = TypeVar("T")

LISTENER_NAMES = (
    "imap",
    "imaps",
    "pop3",
    "pop3s",
    "smtp",
    "submission",
    "submissions",
    "lmtp",
    "http",
)


@dataclass(frozen=True)
class ListenersConfig:
    """``HOST:PORT`` or ``off`` per listener. Unprivileged ports by default so that
    mailkeep runs without root; the standard ports are 143, 993, 110, 995, 25, 587, 465,
    24 (LMTP). Loopback only by default: listen on ``0.0.0.0:PORT`` to serve the network."""

    imap: str = "127.0.0.1:1143"
    imaps: str = "127.0.0.1:1993"
    pop3: str = "127.0.0.1:1110"
    pop3s: str = "127.0.0.1:1995"
    smtp: str = "127.0.0.1:2525"
    submission: str = "off"
    submissions: str = "off"
    lmtp: str = "127.0.0.1:2424"
    http: str = "off"
    proxy_protocol: bool = False
    """Expect a PROXY protocol (v1/v2) header on every connection (behind a load balancer)."""

    def address(self, name: str) -> tuple[str, int] | None:
        value: str = getattr(self, name)
        return parse_address(value)


@dataclass(frozen=True)
class TlsConfig:
    cert: str = "tls/cert.pem"
    """Certificate chain (PEM); relative paths are inside the data directory."""
    key: str = "tls/key.pem"
    min_version: str = "TLSv1.2"


@dataclass(frozen=True)
class StoreConfig:
    url: str = "sqlite:store"
    """``sqlite:PATH`` (relative to the data directory) or ``postgresql://...``."""
    pool_size: int = 10
    """PostgreSQL connections per node; SQLite reader threads."""
    expunge_log_days: int = 180
    """How long expunged UIDs are remembered for QRESYNC VANISHED."""


@dataclass(frozen=True)
class LimitsConfig:
    max_line: int = 64 * 1024
    """Longest command line accepted, in octets (IMAP, POP3, SMTP)."""
    max_message: int = 50 * MB
    """Largest message accepted (SMTP SIZE, IMAP APPEND literal, LMTP)."""
    max_literal_unauthenticated: int = 8 * 1024
    connections_per_address: int = 200
    connections_total: int = 20000
    idle_timeout: int = 1800
    """Seconds an authenticated IMAP session may stay silent (also IDLE's limit)."""
    login_timeout: int = 60
    """Seconds a connection may take to authenticate."""
    pop3_timeout: int = 600
    smtp_timeout: int = 300
    max_mime_parts: int = 10000
    max_mime_depth: int = 50
    fetch_cache: str | int = "256M"
    """Memory for rendered FETCH items that never change (``imap.fetchcache``): about
    500 octets per message and item set (BODYSTRUCTURE; a message list's header fields)
    that clients fetch for whole folders; "0" turns it off."""

    def __post_init__(self) -> None:
        self.fetch_cache_octets  # noqa: B018 - a bad size is refused when the file is read

    @property
    def fetch_cache_octets(self) -> int:
        try:
            octets = parse_size(self.fetch_cache)
        except ConfigError as exc:
            raise ConfigError(f"[limits] fetch_cache: {exc}") from None
        if octets is None:  # "none" would read as "no limit"
            raise ConfigError("[limits] fetch_cache must be a size (256M, or 0 for none)")
        return octets


@dataclass(frozen=True)
class AuthConfig:
    allow_plaintext: bool = False
    """Accept passwords on unencrypted non-loopback connections (not recommended)."""
    allow_plaintext_on_loopback: bool = True
    failure_delay: float = 2.0
    """Seconds before answering a failed login; grows with repeated failures."""
    max_failures: int = 3
    """Failed logins on one connection before it is closed."""


@dataclass(frozen=True)
class Pop3Config:
    retention: str = "keep"
    """Default for accounts: ``keep`` (leave on server), ``delete-after-retr`` (delete on
    QUIT what was downloaded), or ``days:N`` (delete N days after the first download)."""
    retr_marks_seen: bool = True
    """Whether RETR sets \\Seen, so IMAP clients see the message as read."""
    login_delay: int = 0
    """Seconds advertised as LOGIN-DELAY (RFC 2449); 0 advertises nothing."""


@dataclass(frozen=True)
class Config:
    hostname: str = field(default_factory=socket.getfqdn)
    domains: tuple[str, ...] = ()
    """Domains we accept mail for; empty means the domains of existing accounts."""
    default_quota: str = "none"
    """Quota for new accounts, e.g. ``2G``, ``500M`` or ``none``."""
    admins: tuple[str, ...] = ()
    """Account addresses with administrator rights over IMAP: SETQUOTA (RFC 9208), the
    server's /shared annotations (RFC 5464) and every right on the public mailboxes."""
    parse_workers: int = -1
    """Processes parsing delivered and appended messages beside the server (``mail/parser``);
    0 parses in the server process; -1: one where the machine has a second core."""
    listeners: ListenersConfig = field(default_factory=ListenersConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    pop3: Pop3Config = field(default_factory=Pop3Config)
    data_dir: Path = Path(".")
    """Set from --data, not from the file."""

    def path(self, relative: str) -> Path:
        """A configured path, resolved against the data directory."""
        return self.data_dir / os.path.expanduser(relative)


def parse_address(value: str) -> tuple[str, int] | None:
    """``HOST:PORT`` → (host, port); ``off`` → None. IPv6 hosts go in brackets."""
    value = value.strip()
    if value.lower() == "off":
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"listener address {value!r} is not HOST:PORT or 'off'")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def parse_size(value: str | int) -> int | None:
    """``2G``, ``500M``, ``100K``, ``12345`` → octets; ``none``/``unlimited`` → None."""
    if isinstance(value, int):
        return value
    text = value.strip().upper().removesuffix("B")
    if text in {"NONE", "UNLIMITED", ""}:
        return None
    units = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    factor = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    try:
        result = int(float(number) * factor)
    except ValueError:
        raise ConfigError(f"size {value!r} is not a number with K, M, G or T") from None
    if result < 0:
        raise ConfigError(f"size {value!r} is negative")
    return result


def load(data_dir: Path, config_file: Path | None = None) -> Config:
    """Read the config (default: ``mailkeep.toml`` in the data directory, if present)."""
    path = config_file or data_dir / "mailkeep.toml"
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
    elif config_file is not None:
        raise ConfigError(f"config file {path} does not exist")
    config = _build(Config, raw, str(path))
    return dataclasses.replace(config, data_dir=data_dir)


def _build(cls: type[T], raw: dict[str, Any], where: str) -> T:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "data_dir"}  # type: ignore[arg-type]
    unknown = set(raw) - names
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: [{name}] must be a table")
            values[name] = _build(hint, value, f"{where} [{name}]")  # type: ignore[arg-type]
        else:
            values[name] = _coerce(hint, value, f"{where}: {name}")
    return cls(**values)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings")
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        expected: tuple[type, ...] = tuple(a for a in typing.get_args(hint) if a is not type(None))
    else:
        expected = (hint,)
    if float in expected and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) and bool not in expected:
        raise ConfigError(f"{where} must be {_names(expected)}, not a boolean")
    if not isinstance(value, expected):
        raise ConfigError(f"{where} must be {_names(expected)}, not {value!r}")
    return value


def _names(types_: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in types_)


DEFAULT_CONFIG_TOML = """\
# mailkeep configuration. Every setting is shown with its default, commented out;
# uncomment and change what you need. Paths are relative to the data directory.

# hostname = "mail.example.com"      # used in greetings, Received: and the certificate
# domains = []                       # domains we accept mail for; [] = those of the accounts
# default_quota = "none"             # quota of new accounts: "2G", "500M", "none"
# admins = []                        # addresses allowed SETQUOTA, server annotations, Public/
# parse_workers = -1                 # processes parsing incoming mail; 0 = none, -1 = auto

[listeners]
# HOST:PORT or "off". Unprivileged ports by default; the standard ones are
# imap 143, imaps 993, pop3 110, pop3s 995, smtp 25, submission 587, submissions 465,
# lmtp 24. Loopback only by default: use "0.0.0.0:PORT" to serve the network.
# imap = "127.0.0.1:1143"
# imaps = "127.0.0.1:1993"
# pop3 = "127.0.0.1:1110"
# pop3s = "127.0.0.1:1995"
# smtp = "127.0.0.1:2525"
# submission = "off"
# submissions = "off"
# lmtp = "127.0.0.1:2424"
# http = "off"
# proxy_protocol = false             # expect a PROXY v1/v2 header (behind a load balancer)

[tls]
# cert = "tls/cert.pem"              # replace with a real certificate (reloaded on SIGHUP)
# key = "tls/key.pem"
# min_version = "TLSv1.2"

[store]
# url = "sqlite:store"               # or "postgresql://user@host/dbname"
# pool_size = 10                     # PostgreSQL connections / SQLite reader threads
# expunge_log_days = 180             # how long QRESYNC can report expunged messages

[limits]
# max_line = 65536                   # longest command line, octets
# max_message = 52428800             # largest message (50 MiB)
# max_literal_unauthenticated = 8192
# connections_per_address = 200
# connections_total = 20000
# idle_timeout = 1800                # seconds; IMAP IDLE and idle sessions
# login_timeout = 60
# pop3_timeout = 600
# smtp_timeout = 300
# max_mime_parts = 10000
# max_mime_depth = 50
# fetch_cache = "256M"               # FETCH items kept in memory, ~500 B per message and item set

[auth]
# allow_plaintext = false            # passwords over unencrypted non-loopback connections
# allow_plaintext_on_loopback = true
# failure_delay = 2.0                # seconds after a failed login; grows with repeats
# max_failures = 3                   # failed logins before the connection is closed

[pop3]
# retention = "keep"                 # "keep", "delete-after-retr" or "days:N"
# retr_marks_seen = true             # RETR sets \\Seen for IMAP clients
# login_delay = 0                    # seconds advertised as LOGIN-DELAY; 0 = none
"""
