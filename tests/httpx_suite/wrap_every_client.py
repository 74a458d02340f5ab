"""A pytest plugin for httpx's own test suite: every client transport (the
default one, a given one, and every mount) is wrapped, as a user dropping the
layer in would: an ``httpx.AsyncClient``'s in a ``ResilientTransport``, an
``httpx.Client``'s in a ``SyncResilientTransport``, retries off."""

from __future__ import annotations

from typing import Any

import httpx

from resilient_http import Policy, ResilientTransport, RetryPolicy, SyncResilientTransport

_NO_RETRIES = Policy(retry=RetryPolicy(attempts=1))


def _wrapped(transport: Any) -> Any:
    if isinstance(transport, ResilientTransport | SyncResilientTransport):
        return transport
    if isinstance(transport, httpx.AsyncBaseTransport):
        return ResilientTransport(transport, policy=_NO_RETRIES)
    return SyncResilientTransport(transport, policy=_NO_RETRIES)


def _wrap(client_class: type[httpx.AsyncClient] | type[httpx.Client]) -> None:
    for name in ("_init_transport", "_init_proxy_transport"):
        original = getattr(client_class, name)

        def init(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            return _wrapped(__original(self, *args, **kwargs))

        setattr(client_class, name, init)


_wrap(httpx.AsyncClient)
_wrap(httpx.Client)
