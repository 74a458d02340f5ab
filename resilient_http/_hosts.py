"""Breaker keys and host patterns.

A breaker key is the upstream authority, normalised: the lower-cased ASCII host
(IDNA-encoded, trailing dot removed, IPv6 literals in brackets) plus the port,
with the scheme's default port filled in::

    https://API.example.com/        -> "api.example.com:443"
    https://api.example.com:443/x   -> "api.example.com:443"
    http://[::1]:8080/              -> "[::1]:8080"

Keys never contain a path, a query string or userinfo, so they are safe to log
and to use as metric labels.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import httpx

if TYPE_CHECKING:
    from ._types import URL

__all__ = ["DEFAULT_PORTS", "HostPattern", "PatternTable", "key_for_url", "split_key"]

DEFAULT_PORTS: dict[str, int] = {"http": 80, "https": 443, "ws": 80, "wss": 443}

T = TypeVar("T")


def _format_host(raw_host: str) -> str:
    host = raw_host.lower().rstrip(".")
    if ":" in host and not host.startswith("["):
        with contextlib.suppress(ValueError):  # one spelling per address: [0:0::1] is [::1]
            host = ipaddress.IPv6Address(host).compressed
        host = f"[{host}]"
    return host


def key_for_url(url: URL) -> str | None:
    """The breaker key for ``url``, or ``None`` when the URL has no usable
    authority (missing host, or a scheme not in ``DEFAULT_PORTS``, even with an
    explicit port): such requests are the caller's error and are passed to the
    inner transport untouched, without creating a breaker."""
    raw_host = url.raw_host
    default_port = DEFAULT_PORTS.get(url.scheme)
    if not raw_host or default_port is None:
        return None
    port = url.port
    if port is None:
        port = default_port
    host = _format_host(raw_host.decode("ascii"))
    if not host or not 0 < port < 65536:  # "http://./", "http://h:-1/" (httpx allows both)
        return None
    return f"{host}:{port}"


def split_key(key: str) -> tuple[str, int]:
    host, _, port = key.rpartition(":")
    return host, int(port)


def shown(text: str) -> str:
    """What an error message may quote of a host pattern or URL someone gave:
    its scheme and authority, with any userinfo, path, query or fragment left
    out (``...`` where they were), as for every URL this library reports."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    cut = [at for at in map(rest.find, "/?#") if at != -1]
    end = min(cut) if cut else len(rest)
    authority = rest[:end]
    if "@" in authority:
        authority = "...@" + authority.rpartition("@")[2]
    return f"{scheme}{sep}{authority}{'...' if end < len(rest) else ''}"


def _normalise_host(text: str, *, what: str) -> str:
    """Normalise a bare host exactly the way httpx normalises URL hosts."""
    try:
        url = httpx.URL(f"http://{text}/")
    except (httpx.InvalidURL, ValueError) as exc:
        raise ValueError(f"{what}: invalid host {text!r}") from exc
    if (
        not url.raw_host
        or url.port is not None
        or url.userinfo
        or url.raw_path != b"/"
        or url.query
        or url.fragment
    ):
        raise ValueError(f"{what}: invalid host {text!r}")
    host = _format_host(url.raw_host.decode("ascii"))
    if not host:
        raise ValueError(f"{what}: invalid host {text!r}")
    return host


@dataclass(frozen=True, slots=True)
class HostPattern:
    """A parsed host pattern: ``host``, ``host:port``, ``*.suffix`` or ``*.suffix:port``."""

    text: str
    host: str
    port: int | None
    wildcard: bool

    @classmethod
    def parse(cls, pattern: object, *, what: str = "host pattern") -> HostPattern:
        if not isinstance(pattern, str):
            raise TypeError(f"{what} must be a str, got {type(pattern).__name__}: {pattern!r}")
        text = pattern.strip()
        bad = not text or text != pattern or any(c in text for c in "/?#@ \t\r\n\\")
        if bad or "://" in text:
            raise ValueError(
                f"{what} {shown(pattern)!r} is malformed: "
                "expected 'host', 'host:port' or '*.domain'"
            )
        host_part, port = _split_port(text, pattern, what)
        wildcard = host_part.startswith("*.")
        if wildcard:
            host_part = host_part[2:]
        if "*" in host_part:
            raise ValueError(
                f"{what} {pattern!r} is malformed: '*' is only allowed as a leading '*.' label"
            )
        if host_part.startswith(".") or ".." in host_part:
            # no URL has an empty label: such a pattern would silently match nothing
            hint = f"; for subdomains write '*{host_part}'" if host_part.startswith(".") else ""
            raise ValueError(f"{what} {pattern!r} is malformed: empty label{hint}")
        host = _normalise_host(host_part, what=f"{what} {pattern!r}")
        return cls(text=pattern, host=host, port=port, wildcard=wildcard)


def _split_port(text: str, pattern: str, what: str) -> tuple[str, int | None]:
    """``host`` / ``host:port`` / ``[v6]`` / ``[v6]:port`` -> (host part, port or None)."""
    if text.startswith("["):  # IPv6 literal, optionally with a port
        end = text.find("]")
        if end == -1:
            raise ValueError(f"{what} {pattern!r} is malformed: unclosed '['")
        host_part, rest = text[: end + 1], text[end + 1 :]
        if not rest:
            return host_part, None
        if not rest.startswith(":"):
            raise ValueError(f"{what} {pattern!r} is malformed")
        return host_part, _parse_port(rest[1:], pattern, what)
    if text.count(":") > 1:
        raise ValueError(f"{what} {pattern!r} is malformed: put IPv6 literals in brackets")
    if ":" in text:
        host_part, port_text = text.split(":")
        return host_part, _parse_port(port_text, pattern, what)
    return text, None


def _parse_port(text: str, pattern: str, what: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise ValueError(f"{what} {pattern!r} has an invalid port {text!r}")
    return int(text)


class PatternTable(Generic[T]):
    """Resolve a breaker key against host patterns, most specific first:
    ``host:port``, then ``host``, then the longest matching wildcard (with a
    port before without), then ``None``."""

    __slots__ = ("_exact", "_host", "_wild")

    def __init__(self, items: Iterable[tuple[HostPattern, T]] = ()) -> None:
        self._exact: dict[tuple[str, int], T] = {}
        self._host: dict[str, T] = {}
        self._wild: list[tuple[HostPattern, T]] = []
        for pattern, value in items:
            self.add(pattern, value)

    def add(self, pattern: HostPattern, value: T) -> None:
        if pattern.wildcard:
            self._wild = [(p, v) for p, v in self._wild if p != pattern]
            self._wild.append((pattern, value))
            # longest suffix first; a pattern with a port before one without
            self._wild.sort(key=lambda pv: (-len(pv[0].host), pv[0].port is None))
        elif pattern.port is not None:
            self._exact[(pattern.host, pattern.port)] = value
        else:
            self._host[pattern.host] = value

    def __bool__(self) -> bool:
        return bool(self._exact or self._host or self._wild)

    def lookup(self, key: str) -> T | None:
        host, port = split_key(key)
        found = self._exact.get((host, port))
        if found is not None:
            return found
        found = self._host.get(host)
        if found is not None:
            return found
        for pattern, value in self._wild:
            if host.endswith("." + pattern.host) and pattern.port in (None, port):
                return value
        return None
