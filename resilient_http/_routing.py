"""Routes below the breaker: mounts and proxies from the environment.

``httpx.AsyncClient(transport=...)`` sends ``mounts=`` routes around the given
transport, and drops the proxies ``trust_env`` would read from ``HTTP_PROXY``,
``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY``. ``ResilientClient`` (and
``SyncResilientClient``) keeps both by choosing among them *inside* its one
resilient transport: every route is guarded, and breakers stay keyed by the origin, never the proxy.

The patterns and their precedence are httpx's (``"all://"``, ``"https://"``,
``"http://example.com"``, ``"all://*example.com"``, ``"all://*.example.com"``,
``"https://example.com:8443"``): a pattern with a port first, then the longest
host, then the longest scheme.
"""

from __future__ import annotations

import ipaddress
import urllib.request
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from ._types import URL

__all__ = ["MountPattern", "environment_proxies"]


class MountPattern:
    """One ``mounts`` key, matched the way httpx matches it."""

    __slots__ = ("host", "port", "priority", "scheme", "text")

    def __init__(self, text: str) -> None:
        if "://" not in text:
            raise ValueError(
                f"mount pattern {text!r} must look like 'scheme://' or 'scheme://host'"
            )
        url = httpx.URL(text)
        self.text = text
        self.scheme = url.scheme
        self.host = "" if url.host == "*" else url.host
        self.port = url.port
        self.priority = (0 if self.port is not None else 1, -len(self.host), -len(self.scheme))

    def matches(self, url: URL) -> bool:
        if self.scheme != "all" and self.scheme != url.scheme:
            return False
        if self.port is not None and self.port != url.port:
            return False
        host = self.host
        if not host:
            return True
        if host.startswith("*."):  # subdomains only
            return url.host.endswith(host[1:])
        if host.startswith("*"):  # the domain and its subdomains
            return url.host == host[1:] or url.host.endswith("." + host[1:])
        return url.host == host


def environment_proxies() -> dict[str, str | None]:
    """The proxies ``trust_env`` reads (``HTTP_PROXY``, ``HTTPS_PROXY``,
    ``ALL_PROXY``, ``NO_PROXY``), as mount patterns: a proxy URL, or ``None``
    for a host that must be reached directly. Read the way httpx reads them."""
    info = urllib.request.getproxies()
    mounts: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        proxy = info.get(scheme)
        if proxy:
            mounts[f"{scheme}://"] = proxy if "://" in proxy else f"http://{proxy}"
    for host in (h.strip() for h in info.get("no", "").split(",")):
        if host == "*":
            return {}
        if not host:
            continue
        if "://" in host:
            mounts[host] = None
        elif _is_ip(host) or host.lower() == "localhost":
            mounts[f"all://{host}" if ":" not in host else f"all://[{host}]"] = None
        else:
            mounts[f"all://*{host}"] = None
    return mounts


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
