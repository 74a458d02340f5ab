# Generated from resilient_http/_async/_client.py by tests/codegen.py: do not edit.
"""SyncResilientClient: an ``httpx.Client`` whose transport is a SyncResilientTransport."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from resilient_http._events import Event, Listener
from resilient_http._policy import Policy
from resilient_http._routing import environment_proxies
from resilient_http._store import SyncStateStore
from resilient_http._sync._router import Router
from resilient_http._sync._transport import SyncResilientTransport

__all__ = ["DEFAULT_TIMEOUT", "SyncResilientClient"]

#: Never "no timeout": a hung upstream must end as a (counted) timeout, not a
#: stuck caller. 5 s to connect or to get a pool slot, 30 s between reads or writes.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0, pool=5.0)

# Client arguments that only configure the default transport. httpx ignores
# them once ``transport=`` is given, so they go to the inner transport instead.
_TRANSPORT_KWARGS = ("verify", "cert", "http1", "http2", "limits", "proxy")

TimeoutTypes = (
    httpx.Timeout | float | None | tuple[float | None, float | None, float | None, float | None]
)


class SyncResilientClient(httpx.Client):
    """A preconfigured ``httpx.Client``: every request goes through a
    :class:`SyncResilientTransport` (``client.transport``).

    ``policy``, ``hosts``, ``listeners`` and ``store`` configure that transport. ``transport``
    is the inner transport (by default an ``httpx.HTTPTransport`` built from
    ``verify``, ``cert``, ``http1``, ``http2``, ``limits`` and ``proxy``), or a
    ready ``SyncResilientTransport``, used as it is. Every route goes through that
    one transport, so every route has breakers keyed by the origin: ``mounts``
    (httpx's patterns and precedence) and, with ``trust_env`` (the default) and
    no ``proxy``, the proxies from ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``/
    ``NO_PROXY``, as a plain ``httpx.Client`` would use them. Every other
    keyword goes to ``httpx.Client``; ``timeout`` defaults to
    :data:`DEFAULT_TIMEOUT`.
    """

    def __init__(
        self,
        *,
        policy: Policy | None = None,
        hosts: Mapping[str, Policy] | None = None,
        transport: httpx.BaseTransport | None = None,
        listeners: Iterable[Listener | Callable[[Event], object]] = (),
        store: SyncStateStore | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        mounts: Mapping[str, httpx.BaseTransport | None] | None = None,
        **kwargs: Any,
    ) -> None:
        transport_kwargs = {k: kwargs.pop(k) for k in _TRANSPORT_KWARGS if k in kwargs}
        if isinstance(transport, SyncResilientTransport):
            # Already resilient: use it as it is rather than stacking two breakers.
            if (
                policy is not None
                or hosts is not None
                or tuple(listeners)
                or store is not None
                or transport_kwargs
                or mounts
            ):
                raise TypeError(
                    "transport is already a SyncResilientTransport: configure policy, hosts, "
                    "listeners, store, mounts and connection settings on it, not on "
                    "SyncResilientClient"
                )
            self._resilient = transport
            super().__init__(transport=transport, timeout=timeout, **kwargs)
            return
        inner = _inner_transport(
            transport, dict(mounts or {}), kwargs.get("trust_env", True), transport_kwargs
        )
        self._resilient = SyncResilientTransport(
            inner, policy=policy, hosts=hosts, listeners=listeners, store=store
        )
        super().__init__(transport=self._resilient, timeout=timeout, **kwargs)

    @property
    def transport(self) -> SyncResilientTransport:
        """The :class:`SyncResilientTransport` every request goes through."""
        return self._resilient


def _inner_transport(
    transport: httpx.BaseTransport | None,
    mounts: dict[str, httpx.BaseTransport | None],
    trust_env: bool,
    transport_kwargs: dict[str, Any],
) -> httpx.BaseTransport:
    """What the ``SyncResilientTransport`` wraps: the default transport, or a router
    over it, the ``mounts`` and, as httpx would (``trust_env``, no explicit
    ``proxy``), the proxies from the environment. Every route is then guarded."""
    if transport is None:
        transport = httpx.HTTPTransport(trust_env=trust_env, **transport_kwargs)
        if trust_env and transport_kwargs.get("proxy") is None:
            settings = {k: v for k, v in transport_kwargs.items() if k != "proxy"}
            for pattern, proxy in environment_proxies().items():
                mounts.setdefault(
                    pattern,
                    None
                    if proxy is None
                    else httpx.HTTPTransport(
                        trust_env=trust_env, proxy=httpx.Proxy(proxy), **settings
                    ),
                )
    elif transport_kwargs:
        raise TypeError(
            f"{', '.join(sorted(transport_kwargs))} configure the default transport; "
            "set them on the transport you pass instead"
        )
    return Router(transport, mounts) if mounts else transport
