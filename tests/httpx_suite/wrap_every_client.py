"""A pytest plugin for httpx's own test suite: every client transport (the
default one, a given one, and every mount) is wrapped, as a user dropping the
layer in would: an ``httpx.AsyncClient``'s in a ``ResilientTransport``, an
``httpx.Client``'s in a ``SyncResilientTransport``, retries off."""

from __future__ import annotations

from typing import Any

import httpx

from resilient_http import Policy, ResilientTransport, RetryPolicy, SyncResilientTransport

_NO_RETRIES = Policy(retry=RetryPolicy(attempts=1))


def _wrap(client_class: type[httpx.AsyncClient] | type[httpx.Client], layer: type[Any]) -> None:
    """Wrap what ``client_class`` builds in ``layer`` (by the client's kind, not
    the transport's: ``httpx.MockTransport`` is both sync and async)."""
    for name in ("_init_transport", "_init_proxy_transport"):
        original = getattr(client_class, name)

        def init(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            transport = __original(self, *args, **kwargs)
            if isinstance(transport, layer):
                return transport
            return layer(transport, policy=_NO_RETRIES)

        setattr(client_class, name, init)


_wrap(httpx.AsyncClient, ResilientTransport)
_wrap(httpx.Client, SyncResilientTransport)
