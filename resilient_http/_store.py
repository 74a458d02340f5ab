"""The state store seam: where a transport's breakers may share their state.

By default every process keeps its own breakers in memory (:class:`InMemoryStore`,
or simply ``store=None``): the breaker *is* the state, and the transport makes
no store calls at all. A shared store (``resilient_http.redis.RedisStateStore``)
mirrors fleet-wide decisions into the local breakers and is told about local
verdicts, through a few hooks the transport calls:

- ``attach(hosts)`` / ``detach(hosts)``: a transport starts / stops using the
  store; ``hosts`` maps breaker keys to objects with a ``breaker`` attribute
  (the transport's live breakers), so pushed transitions can be applied.
- ``bind(breaker)``: a breaker was just created (learn the fleet's state for it).
- ``record(breaker, ticket, outcome)``: an attempt reached a verdict; called
  *before* the breaker hears it. Must not block: anything that needs IO is
  queued. On the success path this is the only call, and it must stay cheap.
- ``transitioned(breaker, old, new)``: the breaker changed state.
- ``admit_probe(breaker, ticket)``: the breaker handed out a half-open probe
  ticket; return ``False`` to reject the call instead (the store must then give
  the ticket back with ``breaker.on_ignored(ticket)``). The only awaited hook.

- ``retry_after(breaker)`` (optional): seconds until the store would let a
  probe go (a fleet-wide probe lease held elsewhere); a call it rejects is
  told the larger of this and the local breaker's ``retry_after``.

A store must never make a request fail: on any trouble it falls back to the
local breakers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ._breaker import Breaker, CircuitState, Ticket
from ._outcomes import Outcome

__all__ = ["HasBreaker", "InMemoryStore", "Outcome", "StateStore", "SyncStateStore"]


class HasBreaker(Protocol):
    """What a transport keeps per host, as far as a store is concerned."""

    @property
    def breaker(self) -> Breaker: ...


class StateStore(Protocol):
    """Where breakers share state; see the module docstring for each hook."""

    def attach(self, hosts: Mapping[str, HasBreaker]) -> None: ...

    async def detach(self, hosts: Mapping[str, HasBreaker]) -> None: ...

    def bind(self, breaker: Breaker) -> None: ...

    def record(self, breaker: Breaker, ticket: Ticket, outcome: Outcome) -> None: ...

    def transitioned(self, breaker: Breaker, old: CircuitState, new: CircuitState) -> None: ...

    async def admit_probe(self, breaker: Breaker, ticket: Ticket) -> bool: ...


class SyncStateStore(Protocol):
    """A :class:`StateStore` for ``SyncResilientTransport``: the same hooks,
    ``detach`` and ``admit_probe`` plain functions (called from any thread)."""

    def attach(self, hosts: Mapping[str, HasBreaker]) -> None: ...

    def detach(self, hosts: Mapping[str, HasBreaker]) -> None: ...

    def bind(self, breaker: Breaker) -> None: ...

    def record(self, breaker: Breaker, ticket: Ticket, outcome: Outcome) -> None: ...

    def transitioned(self, breaker: Breaker, old: CircuitState, new: CircuitState) -> None: ...

    def admit_probe(self, breaker: Breaker, ticket: Ticket) -> bool: ...


class InMemoryStore:
    """The default: each process's breakers are the whole state.

    Passing it (or nothing) as ``store=`` keeps the transport on its fast path,
    with no store calls at all.
    """

    __slots__ = ()

    def attach(self, hosts: Mapping[str, HasBreaker]) -> None:
        pass

    async def detach(self, hosts: Mapping[str, HasBreaker]) -> None:
        pass

    def bind(self, breaker: Breaker) -> None:
        pass

    def record(self, breaker: Breaker, ticket: Ticket, outcome: Outcome) -> None:
        pass

    def transitioned(self, breaker: Breaker, old: CircuitState, new: CircuitState) -> None:
        pass

    async def admit_probe(self, breaker: Breaker, ticket: Ticket) -> bool:
        return True
