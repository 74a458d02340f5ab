# Generated from resilient_http/_async/_registry.py by tests/codegen.py: do not edit.
"""The hosts a transport has met: one ``Host`` per upstream authority (its
breaker, policy, budgets, bulkhead, hedging and endpoint group), found from a
request's URL through a route cache, created on first use from the most
specific host pattern, and kept within ``max_hosts`` by eviction."""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Mapping

import httpx

from resilient_http._breaker import Breaker, CircuitState
from resilient_http._endpoints import Endpoint
from resilient_http._groups import Group
from resilient_http._hedging import HedgeState
from resilient_http._hosts import HostPattern, PatternTable, key_for_url, split_key
from resilient_http._policy import Fallback, Policy, RetryBudget, RetryPolicy
from resilient_http._retry import BudgetState
from resilient_http._sync import _io

__all__ = ["Host", "HostRegistry", "Rank", "parse_host_patterns", "rank"]

# Specificity ranks: explicit host:port > host > wildcard (longer first) > default.
Rank = tuple[int, int, int]
DEFAULT_RANK: Rank = (0, 0, 0)


def rank(pattern: HostPattern) -> Rank:
    if pattern.wildcard:
        return (1, len(pattern.host), pattern.port is not None)
    return (3 if pattern.port is not None else 2, 0, 0)


#: How many hosts one eviction looks at, at most (keeps a new host's cost flat).
_EVICTION_SCAN = 8


def _eviction_tier(host: Host) -> int:
    """0 idle, 1 closed with recent failures, 2 open or half-open, 3 never evicted."""
    breaker = host.breaker
    if host.is_busy() or breaker.forced is not None or host.group is not None:
        return 3
    if breaker.is_idle():
        return 0
    return 1 if breaker._state is CircuitState.CLOSED else 2


def parse_host_patterns(hosts: Mapping[str, Policy]) -> list[tuple[HostPattern, Policy]]:
    """Parse ``hosts`` keys; two spellings of one pattern are an error, not a
    silent choice between their policies."""
    parsed: list[tuple[HostPattern, Policy]] = []
    seen: dict[tuple[str, int | None, bool], str] = {}
    for text, host_policy in hosts.items():
        if not isinstance(host_policy, Policy):
            raise TypeError(f"hosts[{text!r}] must be a Policy, got {host_policy!r}")
    for text, host_policy in hosts.items():
        pattern = HostPattern.parse(text, what="hosts pattern")
        same = (pattern.host, pattern.port, pattern.wildcard)
        if same in seen:
            raise ValueError(
                f"hosts patterns {seen[same]!r} and {text!r} name the same hosts: keep one"
            )
        seen[same] = text
        if host_policy.endpoints is not None and pattern.wildcard:
            raise ValueError(
                f"hosts[{text!r}]: endpoints need a pattern that names one host, not a wildcard"
            )
        parsed.append((pattern, host_policy))
    return parsed


@functools.lru_cache(maxsize=64)
def _unusual_statuses(failures: frozenset[int], retryable: frozenset[int]) -> frozenset[int]:
    """One shared set per policy pair, not ~4 KiB per host."""
    return failures | retryable


def _route_key(url: httpx.URL) -> tuple[str, str, int | None]:
    """A URL's scheme, host and port, the route cache's key (``for_url`` reads
    the same three from httpx's parse when it can)."""
    return (url.scheme, url.raw_host.decode("ascii"), url.port)


class Host:
    """Everything the transport keeps for one upstream authority."""

    __slots__ = (
        "breaker",
        "budget",
        "budgets",
        "endpoint",
        "failure_statuses",
        "fallback",
        "fast",
        "group",
        "hedge",
        "key",
        "policy",
        "retry",
        "routes",
        "semaphore",
        "sleepers",
        "unusual_statuses",
    )

    def __init__(self, key: str, policy: Policy, breaker: Breaker) -> None:
        self.key = key
        self.policy = policy
        self.breaker = breaker
        self.retry = policy.retry
        self.failure_statuses = policy.breaker.failure_statuses
        self.fallback: Fallback | None = None
        # keyed by the budget's value: equal budgets on one host are one budget,
        # and a RetryPolicy built afresh per request adds no entry
        self.budgets: dict[RetryBudget, BudgetState] = {}
        self.budget = self.budget_for(policy.retry)
        self.semaphore: _io.Semaphore | None = None
        # the calls sleeping in backoff: woken when the circuit opens
        self.sleepers: set[_io.Sleeper] = set()
        self.hedge = HedgeState(policy.hedge) if policy.hedge is not None else None
        # endpoint groups: a logical host has a group and no endpoint; each of its
        # endpoints has the group and its own endpoint (where requests are sent)
        self.group: Group[Host] | None = None
        self.endpoint: Endpoint | None = None
        # May the transport's fast path serve this host? Set by the transport,
        # which knows its listeners and store; never for a group's hosts.
        self.fast = False
        # statuses that leave the fast path: failures and retryable ones
        self.unusual_statuses = _unusual_statuses(
            frozenset(self.failure_statuses), frozenset(self.retry.statuses)
        )
        # the route-cache keys that lead here, dropped with the host on eviction
        self.routes: list[tuple[str, str, int | None]] = []

    def is_busy(self) -> bool:
        """A call is in flight here (an attempt, or a backoff between two)."""
        return bool(self.breaker.calls_in_flight or self.sleepers)

    def is_rejecting(self) -> bool:
        """Would a call be rejected now? For an endpoint: would every endpoint of its group?"""
        group = self.group
        return self.breaker.is_rejecting() if group is None else group.is_rejecting()

    def budget_for(self, retry: RetryPolicy) -> BudgetState | None:
        budget = retry.budget
        if budget is None:
            return None
        state = self.budgets.get(budget)
        if state is None:
            state = self.budgets[budget] = BudgetState(budget)
        return state


class HostRegistry:
    """Every host a transport has met, and how a request finds its own.

    ``new_breaker(key, policy)`` makes a host's breaker; ``bind`` (a shared
    store's) is told of each; ``evicted(keys)`` hears of hosts forgotten, once
    the map's lock is released (a listener may call back in). ``fast``: no
    async listener or store needs the general path, so hosts may take the
    fast one.
    """

    def __init__(
        self,
        default: Policy,
        patterns: list[tuple[HostPattern, Policy]],
        *,
        max_hosts: int,
        fast: bool,
        new_breaker: Callable[[str, Policy], Breaker],
        bind: Callable[[Breaker], None] | None,
        evicted: Callable[[list[str]], None],
    ) -> None:
        self._default = default
        self._policies: PatternTable[tuple[Policy, Rank]] = PatternTable(
            (p, (host_policy, rank(p))) for p, host_policy in patterns
        )
        self._fallbacks: PatternTable[tuple[Fallback, Rank]] = PatternTable()
        self._max_hosts = max_hosts
        self._fast = fast
        self._new_breaker = new_breaker
        self._bind = bind
        self._evicted = evicted
        self.hosts: OrderedDict[str, Host] = OrderedDict()
        self._routes: dict[tuple[str, str, int | None], Host] = {}
        self.lock = _io.Lock()  # the map's, when threads share it

    def get(self, key: str) -> Host | None:
        """The host for a breaker key, if the map holds it (never creates one)."""
        return self.hosts.get(key)

    def items(self) -> list[tuple[str, Host]]:
        with self.lock:
            return list(self.hosts.items())

    def clear(self) -> None:
        with self.lock:
            self.hosts.clear()
            self._routes.clear()

    def add_fallback(self, pattern: HostPattern, fn: Fallback) -> None:
        """A fallback for the hosts ``pattern`` matches, known and future."""
        with self.lock:
            self._fallbacks.add(pattern, (fn, rank(pattern)))
            for host in self.hosts.values():
                host.fallback = self.resolve_fallback(host.key, host.policy)
            for host in self.hosts.values():  # endpoints answer as their group does
                if host.group is not None and host.endpoint is not None:
                    host.fallback = self.hosts[host.group.key].fallback

    def key_from_user(self, value: str | httpx.URL) -> str:
        if isinstance(value, httpx.URL) or (isinstance(value, str) and "://" in value):
            url = httpx.URL(value)
            key = key_for_url(url)
            if key is None:  # name the scheme and host only: never userinfo or a query
                raise ValueError(
                    f"cannot key a breaker on a URL with scheme {url.scheme!r} and host "
                    f"{url.host!r}: an http(s) or ws(s) URL with a host is needed"
                )
            return key
        if not isinstance(value, str):
            raise TypeError(f"expected a host or URL, got {value!r}")
        pattern = HostPattern.parse(value, what="host")
        if pattern.wildcard:
            raise ValueError(f"expected a host, not a pattern: {value!r}")
        if pattern.port is not None:
            return f"{pattern.host}:{pattern.port}"
        with self.lock:
            live = [k for k in self.hosts if split_key(k)[0] == pattern.host]
        if len(live) == 1:
            return live[0]
        if len(live) > 1:
            raise ValueError(f"{value!r} has breakers on several ports {live}: name the port")
        return f"{pattern.host}:443"

    def _resolve_policy(self, key: str) -> tuple[Policy, Rank]:
        found = self._policies.lookup(key)
        return found if found is not None else (self._default, DEFAULT_RANK)

    def resolve_fallback(self, key: str, policy: Policy) -> Fallback | None:
        _, policy_rank = self._resolve_policy(key)
        registered = self._fallbacks.lookup(key)
        if registered is not None and (policy.fallback is None or registered[1] >= policy_rank):
            return registered[0]
        return policy.fallback

    def for_key(self, key: str) -> Host:
        """The host for a breaker key (created if new). Eviction events go out
        once the map's lock is released: a listener may call back in."""
        with self.lock:
            host, evicted = self._locked_host(key)
        if evicted:
            self._evicted(evicted)
        return host

    def _locked_host(self, key: str) -> tuple[Host, list[str]]:
        """The host for a breaker key, and the keys evicted to make room for it."""
        host = self.hosts.get(key)
        if host is not None:
            self.hosts.move_to_end(key)
            return host, []
        policy, _ = self._resolve_policy(key)
        host = self._add_host(key, policy, self._new_breaker(key, policy))
        if policy.endpoints is not None:
            self._add_group(host)
        if len(self.hosts) > self._max_hosts:
            return host, self._evict()
        return host, []

    def _add_group(self, logical: Host) -> None:
        """A logical host's endpoints: each a host of its own (its own breaker,
        keyed by its own authority), all on the logical host's policy."""
        policy = logical.policy
        members = []
        for endpoint in policy.parsed_endpoints:
            member = self.hosts.get(endpoint.key)
            if member is None:
                member = self._add_host(
                    endpoint.key, policy, self._new_breaker(endpoint.key, policy)
                )
            member.endpoint = endpoint
            member.fallback = logical.fallback
            member.fast = False
            members.append(member)
        group = Group(
            logical.key, policy.parsed_endpoints, members, policy.balance, policy.min_eligible
        )
        logical.group = group
        logical.fast = False
        for member in members:
            member.group = group

    def _add_host(self, key: str, policy: Policy, breaker: Breaker) -> Host:
        host = Host(key, policy, breaker)
        host.fallback = self.resolve_fallback(key, policy)
        host.fast = self._fast
        self.hosts[key] = host
        if self._bind is not None:
            self._bind(breaker)
        return host

    def readopt(self, breaker: Breaker) -> None:
        """A breaker forced by hand after the map forgot it (another thread made
        room between ``breaker()`` and ``force_open()``): it comes back, so the
        forcing holds. Only when no breaker has taken its key meanwhile."""
        with self.lock:
            if breaker.key not in self.hosts:
                self._add_host(breaker.key, self._resolve_policy(breaker.key)[0], breaker)

    def _evict(self) -> list[str]:
        """Bring the breaker map back within ``max_hosts``, at a cost that does
        not grow with it: each eviction looks at no more than ``_EVICTION_SCAN``
        hosts, from the least recently used, and picks its victim in this order:

        1. an idle breaker (``Breaker.is_idle``: closed, nothing in flight, no
           failure within its window): it holds nothing worth remembering;
        2. else a closed breaker whose recent failures have not opened it;
        3. else an open or half-open one: memory stays bounded even when every
           host is down, and open circuits are the last thing forgotten.

        Hosts looked at and kept move to the back of the line (a second
        chance), so the next eviction looks at others. Never evicted: a host
        with a call in flight (an attempt, a body being read, a backoff), whose
        outcome must reach the breaker the transport keeps; a forced breaker
        (``force_open``/``force_closed`` hold until ``reset``); the host just
        created, which is about to be used. Returns the keys evicted.
        """
        hosts = self.hosts
        newest = next(reversed(hosts))
        evicted: list[str] = []
        for _ in range(len(hosts) - self._max_hosts):
            victim: str | None = None
            victim_tier = 3
            for _ in range(_EVICTION_SCAN):
                key = next(iter(hosts))
                if key == newest:
                    break
                host = hosts[key]
                tier = _eviction_tier(host)
                if tier < victim_tier:
                    victim, victim_tier = key, tier
                    if tier == 0:
                        break
                hosts.move_to_end(key)
            if victim is None:
                break  # nothing may go now: the map shrinks on a later eviction
            self._forget(victim)
            evicted.append(victim)
        return evicted

    def _forget(self, key: str) -> None:
        routes = self._routes
        for route in self.hosts.pop(key).routes:
            routes.pop(route, None)

    def for_url(self, url: httpx.URL) -> Host | None:
        """The host (most recently used now) for a request's URL; ``None``: no authority."""
        try:  # the parts httpx's (and httpx2's) own parse holds: three properties cost 7x more
            parts = url._uri_reference
            route = (parts.scheme, parts.host, parts.port)
        except AttributeError:
            route = _route_key(url)
        host = self._routes.get(route)
        if host is None:
            return self._route(url)
        try:
            self.hosts.move_to_end(host.key)
        except KeyError:  # evicted by another thread since
            return self._route(url)
        return host

    def _route(self, url: httpx.URL) -> Host | None:
        """The host for a URL not in the route cache (or ``None``: no authority)."""
        cache_key = _route_key(url)
        key = key_for_url(url)
        if key is None:
            return None
        with self.lock:
            host, evicted = self._locked_host(key)
            if len(self._routes) >= 4 * self._max_hosts:  # many spellings of few hosts
                self._routes.clear()
                for known in self.hosts.values():
                    known.routes.clear()
            self._routes[cache_key] = host
            host.routes.append(cache_key)
        if evicted:
            self._evicted(evicted)
        return host
