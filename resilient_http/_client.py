"""ResilientClient: an ``httpx.AsyncClient`` whose transport is a ResilientTransport."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from ._events import Event, Listener
from ._policy import Policy
from ._store import StateStore
from ._transport import ResilientTransport

__all__ = ["DEFAULT_TIMEOUT", "ResilientClient"]

#: Never "no timeout": a hung upstream must end as a (counted) timeout, not a
#: stuck caller. 5 s to connect or to get a pool slot, 30 s between reads or writes.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0, pool=5.0)

# AsyncClient arguments that only configure the default transport. httpx ignores
# them once ``transport=`` is given, so they go to the inner transport instead.
_TRANSPORT_KWARGS = ("verify", "cert", "http1", "http2", "limits", "proxy")

TimeoutTypes = (
    httpx.Timeout | float | None | tuple[float | None, float | None, float | None, float | None]
)


class ResilientClient(httpx.AsyncClient):
    """A preconfigured ``httpx.AsyncClient``: every request goes through a
    :class:`ResilientTransport` (``client.transport``).

    ``policy``, ``hosts``, ``listeners`` and ``store`` configure that transport. ``transport``
    is the inner transport (by default an ``httpx.AsyncHTTPTransport`` built from
    ``verify``, ``cert``, ``http1``, ``http2``, ``limits`` and ``proxy``), or a
    ready ``ResilientTransport``, used as it is. Every other keyword goes to
    ``httpx.AsyncClient``; ``timeout`` defaults to
    :data:`DEFAULT_TIMEOUT`.
    """

    def __init__(
        self,
        *,
        policy: Policy | None = None,
        hosts: Mapping[str, Policy] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        listeners: Iterable[Listener | Callable[[Event], object]] = (),
        store: StateStore | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        transport_kwargs = {k: kwargs.pop(k) for k in _TRANSPORT_KWARGS if k in kwargs}
        if isinstance(transport, ResilientTransport):
            # Already resilient: use it as it is rather than stacking two breakers.
            if (
                policy is not None
                or hosts is not None
                or tuple(listeners)
                or store is not None
                or transport_kwargs
            ):
                raise TypeError(
                    "transport is already a ResilientTransport: configure policy, hosts, "
                    "listeners, store and connection settings on it, not on ResilientClient"
                )
            self._resilient = transport
            super().__init__(transport=transport, timeout=timeout, **kwargs)
            return
        if transport is None:
            transport = httpx.AsyncHTTPTransport(
                trust_env=kwargs.get("trust_env", True), **transport_kwargs
            )
        elif transport_kwargs:
            raise TypeError(
                f"{', '.join(sorted(transport_kwargs))} configure the default transport; "
                "set them on the transport you pass instead"
            )
        self._resilient = ResilientTransport(
            transport, policy=policy, hosts=hosts, listeners=listeners, store=store
        )
        super().__init__(transport=self._resilient, timeout=timeout, **kwargs)

    @property
    def transport(self) -> ResilientTransport:
        """The :class:`ResilientTransport` every request goes through."""
        return self._resilient
