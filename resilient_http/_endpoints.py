"""The endpoints of a logical host (``Policy(endpoints=...)``), parsed and
validated; how a group of them is driven is ``_groups``."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from ._hosts import shown

__all__ = ["BALANCES", "Endpoint", "parse_endpoint"]

#: ``Policy(balance=...)``: how a group picks among the endpoints that admit a call.
BALANCES = ("ordered", "round_robin")

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a logical host's requests may go: a scheme, a host and a port."""

    scheme: str
    host: str
    port: int
    key: str  # the breaker key: host:port
    authority: str  # the Host header: the port only when it is not the scheme's default


def parse_endpoint(text: object) -> Endpoint:
    """An endpoint from ``"https://a.example.com"`` or ``"http://10.0.0.7:8080"``;
    ``ValueError`` (``TypeError`` for a non-string) naming what is wrong."""
    if not isinstance(text, str):
        raise TypeError(f"Policy.endpoints must be URL strings, got {type(text).__name__}")
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError) as exc:
        raise ValueError(f"Policy.endpoints: {shown(text)!r} is not a URL ({exc})") from None
    if url.scheme not in _DEFAULT_PORTS or not url.host:
        raise ValueError(
            f"Policy.endpoints: {shown(text)!r} must be an absolute http(s) URL with a host, "
            "such as 'https://a.example.com' or 'http://10.0.0.7:8080'"
        )
    if url.userinfo or url.query or url.fragment or url.path not in ("", "/"):
        raise ValueError(
            f"Policy.endpoints: {shown(text)!r} must name a scheme, host and port only "
            "(no path, query, fragment or credentials): the request keeps its own"
        )
    port = url.port if url.port is not None else _DEFAULT_PORTS[url.scheme]
    if not 0 < port < 65536:
        raise ValueError(f"Policy.endpoints: {shown(text)!r} has an invalid port {port}")
    host = url.host.lower()
    bracketed = f"[{host}]" if ":" in host else host
    authority = (
        bracketed if url.port in (None, _DEFAULT_PORTS[url.scheme]) else f"{bracketed}:{port}"
    )
    return Endpoint(url.scheme, host, port, f"{host}:{port}", authority)
