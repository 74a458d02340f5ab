# Generated from resilient_http/_async/_router.py by tests/codegen.py: do not edit.
"""The router below the breaker: ``mounts`` and environment proxies, each
request sent to the transport of the most specific matching pattern."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType

import httpx2

from resilient_http._routing import MountPattern

__all__ = ["Router"]


class Router(httpx2.BaseTransport):
    """Sends each request to the transport of the most specific matching
    pattern (``None``: the default transport), else to the default one."""

    def __init__(
        self,
        default: httpx2.BaseTransport,
        routes: Mapping[str, httpx2.BaseTransport | None],
    ) -> None:
        self.default = default
        for text, transport in routes.items():
            if transport is not None and not isinstance(transport, httpx2.BaseTransport):
                raise TypeError(
                    f"mounts[{text!r}] must be an httpx2.BaseTransport or None, "
                    f"got {type(transport).__name__}"
                )
        self.routes = sorted(
            ((MountPattern(text), transport) for text, transport in routes.items()),
            key=lambda route: route[0].priority,
        )

    def transport_for(self, url: httpx2.URL) -> httpx2.BaseTransport:
        for pattern, transport in self.routes:
            if pattern.matches(url):
                return self.default if transport is None else transport
        return self.default

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        return self.transport_for(request.url).handle_request(request)

    def _all(self) -> list[httpx2.BaseTransport]:
        seen: list[httpx2.BaseTransport] = [self.default]
        for _, transport in self.routes:
            if transport is not None and all(transport is not t for t in seen):
                seen.append(transport)
        return seen

    def __enter__(self) -> Router:
        for transport in self._all():
            transport.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        for transport in self._all():
            transport.__exit__(exc_type, exc_value, traceback)

    def close(self) -> None:
        for transport in self._all():
            transport.close()
