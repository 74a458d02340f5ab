"""Endpoint groups, the sans-IO part: one logical host served by several
endpoints, each with its own breaker. Which endpoint a call (or its retry, or
its hedge) goes to, whether the group as a whole rejects, and the cap on how
many endpoints may be ejected at once."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

from ._breaker import Breaker, CircuitState, Ticket
from ._endpoints import Endpoint

__all__ = ["Group"]


class HasBreaker(Protocol):
    @property
    def breaker(self) -> Breaker: ...


H = TypeVar("H", bound=HasBreaker)


class Group(Generic[H]):
    """The endpoints of one logical host (``key``), in the configured order.

    ``admit`` gives the first endpoint whose breaker admits a call (``ordered``)
    or the next one in turn (``round_robin``), trying ``avoid`` (the endpoint a
    retry or hedge follows) last. ``min_eligible`` is the cap on ejection: an
    endpoint whose circuit opens while fewer than that many others would still
    take calls is not ejected (``keep``)."""

    __slots__ = ("_turn", "balance", "endpoints", "key", "members", "min_eligible")

    def __init__(
        self,
        key: str,
        endpoints: Sequence[Endpoint],
        members: Sequence[H],
        balance: str,
        min_eligible: int,
    ) -> None:
        self.key = key
        self.endpoints = tuple(endpoints)
        self.members = tuple(members)
        self.balance = balance
        self.min_eligible = min_eligible
        self._turn = itertools.count()

    def _order(self, avoid: H | None) -> list[H]:
        members = list(self.members)
        if self.balance == "round_robin":
            start = next(self._turn) % len(members)
            members = members[start:] + members[:start]
        if avoid is not None and len(members) > 1 and avoid in members:
            members.remove(avoid)
            members.append(avoid)
        return members

    def admit(self, avoid: H | None = None) -> tuple[H, Ticket] | None:
        """An endpoint and its ticket, or ``None``: no endpoint admits the call."""
        for member in self._order(avoid):
            ticket = member.breaker.admit()
            if ticket is not None:
                return member, ticket
        return None

    def is_rejecting(self) -> bool:
        """Would every endpoint reject a call right now? Never changes state."""
        return all(member.breaker.is_rejecting() for member in self.members)

    def retry_after(self) -> float:
        """The soonest any endpoint may take a call again (0 if one does now)."""
        return min((member.breaker.retry_after for member in self.members), default=0.0)

    def keep(self, opened: Breaker) -> bool:
        """An endpoint's circuit just opened: keep it in rotation instead (the cap)?"""
        if self.min_eligible == 0 or opened.forced is not None:
            return False
        others = sum(
            not member.breaker.is_rejecting()
            for member in self.members
            if member.breaker is not opened
        )
        return others < self.min_eligible

    def snapshot(self) -> dict[str, Any]:
        retry_after = self.retry_after()
        rejecting = self.is_rejecting()
        return {
            "state": (CircuitState.OPEN if rejecting else CircuitState.CLOSED).value,
            "retry_after": None if math.isinf(retry_after) else round(retry_after, 3),
            "endpoints": [endpoint.key for endpoint in self.endpoints],
            "balance": self.balance,
        }
