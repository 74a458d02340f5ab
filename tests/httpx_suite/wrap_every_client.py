"""A pytest plugin for httpx's own test suite: every ``httpx.AsyncClient``
transport (the default one, a given one, and every mount) is wrapped in a
``ResilientTransport`` with retries off, as a user dropping it in would."""

from __future__ import annotations

from typing import Any

import httpx

from resilient_http import Policy, ResilientTransport, RetryPolicy

_NO_RETRIES = Policy(retry=RetryPolicy(attempts=1))
_init_transport = httpx.AsyncClient._init_transport
_init_proxy_transport = httpx.AsyncClient._init_proxy_transport


def _wrapped(transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
    if isinstance(transport, ResilientTransport):
        return transport
    return ResilientTransport(transport, policy=_NO_RETRIES)


def _init_resilient_transport(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> Any:
    return _wrapped(_init_transport(self, *args, **kwargs))


def _init_resilient_proxy_transport(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> Any:
    return _wrapped(_init_proxy_transport(self, *args, **kwargs))


httpx.AsyncClient._init_transport = _init_resilient_transport  # type: ignore[method-assign]
httpx.AsyncClient._init_proxy_transport = _init_resilient_proxy_transport  # type: ignore[method-assign]
