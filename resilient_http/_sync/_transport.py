# Generated from resilient_http/_async/_transport.py by tests/codegen.py: do not edit.
"""SyncResilientTransport: the thin IO layer around the sans-IO breaker.

For each request: find the host (breaker key) -> ask its breaker for a ticket
(or reject: stale cache, fallback, or ``CircuitOpenError``) -> take a bulkhead
slot if configured -> one attempt on the inner transport -> classify -> on a
retryable outcome, the retry loop (tenacity wait strategies, ``Retry-After``,
deadline, budget; the breaker consulted before every backoff sleep and every
retry). A healthy first attempt takes the fast path: no tenacity machinery, no
allocation beyond one stream wrapper.
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar, overload

import httpx

from resilient_http import _live
from resilient_http._breaker import Breaker, CircuitState, Clock, Ticket
from resilient_http._cache import StaleCache
from resilient_http._events import (
    AttemptFinished,
    BreakerEvicted,
    CallRejected,
    Emitter,
    Event,
    FallbackServed,
    Hedged,
    Listener,
    RetryScheduled,
    StateChanged,
    log_transition,
    logger,
)
from resilient_http._exceptions import (
    BulkheadFullError,
    CircuitOpenError,
    DeadlineExceeded,
    RejectedError,
    deadline_reached,
)
from resilient_http._failures import error_outcome
from resilient_http._hedging import HedgeState
from resilient_http._hosts import HostPattern
from resilient_http._outcomes import Outcome, classified, status_outcome
from resilient_http._policy import Policy, RetryPolicy
from resilient_http._retry import BudgetState, RetryPlan, can_retry, is_idempotent
from resilient_http._store import InMemoryStore, SyncStateStore
from resilient_http._sync import _io
from resilient_http._sync._registry import Host, HostRegistry, parse_host_patterns
from resilient_http._sync._streams import ObservedStream, retain, when_body_ends

__all__ = ["FALLBACK_EXTENSION", "HEDGE_EXTENSION", "RETRY_EXTENSION", "SyncResilientTransport"]

#: ``response.extensions`` key set on a response served instead of a rejection.
FALLBACK_EXTENSION = "resilient_http.fallback"
#: ``request.extensions`` key: a ``RetryPolicy`` replacing the host's for one request.
RETRY_EXTENSION = "resilient_http.retry"
#: ``response.extensions`` key set on a hedged call's response: which attempt
#: answered (0: the first, 1: the first hedge...).
HEDGE_EXTENSION = "resilient_http.hedge"

F = TypeVar("F", bound=Callable[..., Any])
_T = TypeVar("_T", bound="SyncResilientTransport")

_STORE_HOOKS = ("attach", "detach", "bind", "record", "transitioned", "admit_probe")


def _check_settings(
    max_hosts: object, stale_cache: object, store: object, clock: object, sleep: object
) -> None:
    if isinstance(max_hosts, bool) or not isinstance(max_hosts, int) or max_hosts < 1:
        raise ValueError(f"max_hosts must be an int >= 1, got {max_hosts!r}")
    if stale_cache is not None and not isinstance(stale_cache, StaleCache):
        raise TypeError(f"stale_cache must be a StaleCache or None, got {stale_cache!r}")
    if not callable(clock):
        raise TypeError(f"clock must be callable, got {clock!r}")
    if not callable(sleep):
        raise TypeError(f"sleep must be callable, got {sleep!r}")
    if store is not None:
        _check_store(store)


def _check_policies(default: Policy, per_host: list[Policy]) -> None:
    if default.endpoints is not None:
        raise ValueError(
            "policy: endpoints need a host pattern that names one host: "
            "hosts={'api.example.com': Policy(endpoints=...)}"
        )
    for named in (default, *per_host):
        if named.fallback is not None:
            _io.check_fallback(named.fallback, "Policy.fallback")


def _check_store(store: object) -> None:
    missing = [name for name in _STORE_HOOKS if not callable(getattr(store, name, None))]
    if missing:
        raise TypeError(
            f"store must be a SyncStateStore (such as resilient_http.redis.RedisStateStore), "
            f"got {type(store).__name__} without {', '.join(missing)}"
        )


def _fn_name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _error_name(exc: BaseException) -> str:
    return type(exc).__name__


def _answered(host: Host, attempt: _Try) -> bool:
    """Does this attempt win a race: an answer that is not a failure?"""
    outcome = attempt[2]
    return isinstance(outcome, httpx.Response) and outcome.status_code not in host.failure_statuses


def _retry_override(request: httpx.Request) -> RetryPolicy | None:
    """The request's own retry policy (``RETRY_EXTENSION``), if it has one."""
    retry = request.extensions.get(RETRY_EXTENSION)
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(
            f"request.extensions[{RETRY_EXTENSION!r}] must be a RetryPolicy, got {retry!r}"
        )
    return retry


def _admit(host: Host, avoid: bool = False) -> tuple[Host, Ticket] | None:
    """A ticket from the host's breaker; for an endpoint of a group, from the
    endpoint the group picks (another one first when ``avoid``)."""
    group = host.group
    if group is None:
        ticket = host.breaker.admit()
        return None if ticket is None else (host, ticket)
    return group.admit(host if avoid else None)


def _outgoing(request: httpx.Request, host: Host) -> httpx.Request:
    """The request as sent to ``host``: for an endpoint, a copy whose scheme,
    host and port (so its ``Host`` header and TLS server name) are the
    endpoint's; path, query, headers and body untouched."""
    endpoint = host.endpoint
    if endpoint is None:
        return request
    url = request.url.copy_with(scheme=endpoint.scheme, host=endpoint.host, port=endpoint.port)
    headers = request.headers.copy()
    headers["Host"] = endpoint.authority
    return httpx.Request(
        request.method,
        url,
        headers=headers,
        stream=request.stream,
        extensions=dict(request.extensions),
    )


def _as_sent(response: httpx.Response) -> bytes:
    """An in-memory body as it was sent: ``content`` is decoded, and the
    headers a stale answer repeats may say gzip."""
    stream = response.stream
    if isinstance(stream, httpx.ByteStream):
        held = getattr(stream, "_stream", None)  # the bytes it was made of
        return held if isinstance(held, bytes) else b"".join(stream)
    return response.content


def _host_snapshot(host: Host) -> dict[str, Any]:
    if host.group is not None and host.endpoint is None:  # a logical host
        return host.group.snapshot()
    data = host.breaker.snapshot()
    if host.hedge is not None:
        data["hedges"] = host.hedge.snapshot()
    return data


def _clone(request: httpx.Request) -> httpx.Request:
    """A hedge's own copy of a request: the same method, URL, headers and
    in-memory body, and extensions of its own (an attempt may change them)."""
    return httpx.Request(
        request.method,
        request.url,
        headers=request.headers,
        stream=request.stream,
        extensions=dict(request.extensions),
    )


#: One attempt of a race: its ticket, when it started, and its answer or error.
_Try = tuple[Ticket, float, "httpx.Response | Exception"]


class SyncResilientTransport(_io.Misuse, httpx.BaseTransport):
    """An ``httpx.BaseTransport`` that gives every upstream host its own
    circuit breaker, retries idempotent calls safely and serves fallbacks.

    ``transport`` is the inner transport (default ``httpx.HTTPTransport()``);
    closing this transport closes it. ``policy`` applies to every host that no
    entry of ``hosts`` matches (``"api.example.com"``, ``"api.example.com:8443"``,
    ``"*.example.com"``; most specific wins). ``listeners`` receive events.
    ``max_hosts`` bounds the breaker map: past it, the least recently used idle
    closed breakers are evicted. ``store`` shares each host's breaker with other
    processes (``resilient_http.redis.RedisStateStore``); by default every
    process keeps its own. ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        transport: httpx.BaseTransport | None = None,
        *,
        policy: Policy | None = None,
        hosts: Mapping[str, Policy] | None = None,
        listeners: Iterable[Listener | Callable[[Event], object]] = (),
        stale_cache: StaleCache | None = None,
        store: SyncStateStore | None = None,
        max_hosts: int = 1024,
        clock: Clock = time.monotonic,
        sleep: _io.Sleep = _io.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if transport is None:
            transport = httpx.HTTPTransport()
        elif not isinstance(transport, httpx.BaseTransport):
            raise TypeError(
                f"transport must be an httpx.BaseTransport, got {type(transport).__name__}"
            )
        if policy is None:
            policy = Policy()
        elif not isinstance(policy, Policy):
            raise TypeError(f"policy must be a Policy, got {policy!r}")
        parsed_hosts = parse_host_patterns(hosts or {})
        _check_policies(policy, [host_policy for _, host_policy in parsed_hosts])
        _check_settings(max_hosts, stale_cache, store, clock, sleep)
        _io.check_store(store)
        self._inner = transport
        self._stale_cache = stale_cache
        self._emitter = _io.emitter(listeners)
        if isinstance(store, InMemoryStore):
            store = None  # the default: each breaker is its own state
        self._store = store
        # optional hook: how long a busy fleet-wide probe keeps the host rejecting
        self._store_wait: Callable[[Breaker], float] | None = getattr(store, "retry_after", None)
        # Nothing to report, capture or share: a healthy answer in memory is judged at once.
        self._plain = not self._emitter.listeners and stale_cache is None and store is None
        self._own_time = (clock, sleep)  # what isolated() gives back afterwards
        self._clock = clock
        self._sleep = sleep
        if _live.TESTING:  # under resilient_http.testing.isolated(): its time, not ours
            self._clock, self._sleep = _live.TESTING[-1], _live.TESTING[-1].sleep
        self._rng = rng if rng is not None else random.Random()
        self._registry = HostRegistry(
            policy,
            parsed_hosts,
            max_hosts=max_hosts,
            fast=store is None and not self._emitter.owing,
            new_breaker=self._new_breaker,
            bind=None if store is None else store.bind,
            evicted=self._tell_evicted,
        )
        if store is not None:
            store.attach(self._registry.hosts)
        _live.LIVE.add(self)

    # -- public API -----------------------------------------------------------

    @property
    def inner(self) -> httpx.BaseTransport:
        """The wrapped transport."""
        return self._inner

    @overload
    def fallback(self, pattern: str, fn: None = None) -> Callable[[F], F]: ...

    @overload
    def fallback(self, pattern: str, fn: F) -> F: ...

    def fallback(self, pattern: str, fn: F | None = None) -> F | Callable[[F], F]:
        """Register ``fn(request, error) -> httpx.Response`` (sync or async) for
        the hosts matching ``pattern``; as a decorator when ``fn`` is omitted.

        The returned response is marked with
        ``response.extensions["resilient_http.fallback"]`` (the rejection reason).
        """
        parsed = HostPattern.parse(pattern, what="fallback pattern")

        def register(fn: F) -> F:
            _io.check_fallback(fn, f"fallback for {pattern!r}")
            self._registry.add_fallback(parsed, fn)
            return fn

        if fn is None:
            return register
        return register(fn)

    def breaker(self, host_or_url: str | httpx.URL) -> Breaker:
        """The breaker for a host (``"api.example.com"``, ``"api.example.com:8443"``)
        or a URL, created on demand. A bare host with no port finds the host's
        only live breaker, or the one for port 443."""
        registry = self._registry
        return registry.for_key(registry.key_from_user(host_or_url)).breaker

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """JSON-serialisable state of every live breaker, keyed by breaker key::

        {"api.example.com:443": {"state": "open", "retry_after": 12.5, ...}}
        """
        return {key: _host_snapshot(host) for key, host in self._registry.items()}

    def close(self) -> None:
        """Close the inner transport (and detach from a shared store)."""
        try:
            self._detach()
        finally:
            self._inner.close()

    def __enter__(self: _T) -> _T:
        """Enter the inner transport too, as ``with httpx.Client(...)``
        would have entered it without this layer."""
        self._inner.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        """Exit the inner transport (which closes it), after leaving a shared store."""
        try:
            self._detach()
        finally:
            self._inner.__exit__(exc_type, exc_value, traceback)

    def _detach(self) -> None:
        if self._store is not None:
            self._store.detach(self._registry.hosts)

    def _isolate(self, clock: _live.TestClock | None) -> None:
        """Forget every breaker and run on ``clock`` (and its sleep) from now
        on, or on the transport's own time again (``None``); for
        ``resilient_http.testing.isolated``."""
        if clock is None:
            self._clock, self._sleep = self._own_time
        else:
            self._clock, self._sleep = clock, clock.sleep
        self._registry.clear()

    def _new_breaker(self, key: str, policy: Policy) -> Breaker:
        return _io.Breaker(
            key, policy.breaker, clock=self._clock, on_transition=self._on_transition, rng=self._rng
        )

    def _tell_evicted(self, evicted: list[str]) -> None:
        if self._emitter.listeners:
            for key in evicted:
                self._emitter.emit(BreakerEvicted(key))

    def _on_transition(self, breaker: Breaker, old: CircuitState, new: CircuitState) -> None:
        retry_after = breaker.retry_after if new is CircuitState.OPEN else 0.0
        log_transition(breaker.key, old, new, retry_after, breaker.forced is CircuitState.OPEN)
        if breaker.forced is not None and self._registry.get(breaker.key) is None:
            self._registry.readopt(breaker)
        if new is CircuitState.OPEN:  # never sleep in backoff while the circuit is open
            host = self._registry.get(breaker.key)
            if host is not None and host.sleepers:
                for sleeper in list(host.sleepers):  # (threads may add meanwhile)
                    sleeper.cancel()
        if self._emitter.listeners:
            self._emitter.emit(StateChanged(breaker.key, old, new, retry_after))
        if self._store is not None:
            self._store.transitioned(breaker, old, new)
        if new is CircuitState.OPEN:
            self._cap_ejection(breaker)

    def _cap_ejection(self, breaker: Breaker) -> None:
        """An endpoint whose circuit opened while fewer than ``min_eligible``
        others take calls stays in rotation: its circuit closes again."""
        host = self._registry.get(breaker.key)
        group = host.group if host is not None else None
        if (
            group is not None
            and host is not None
            and host.endpoint is not None
            and group.keep(breaker)
        ):
            logger.warning(
                "endpoint %s of %s kept in rotation: ejecting it would leave fewer "
                "than %d endpoints taking calls",
                breaker.key,
                group.key,
                group.min_eligible,
            )
            breaker.reset()

    # -- the request path ----------------------------------------------------------

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = self._registry.for_url(request.url)
        if host is None:  # no usable authority: the caller's error, not the upstream's
            return self._inner.handle_request(request)
        retry = _retry_override(request)
        if host.group is not None and host.endpoint is None:  # a logical host
            return self._grouped(request, host, host.retry if retry is None else retry)
        ticket = host.breaker.admit()
        if ticket is not None and retry is None and host.fast:
            # The fast path: no async listener to wait for, no store to ask, no
            # per-request override, and a bulkhead slot free at once if it has one.
            if host.policy.max_concurrency is None:
                return self._first(request, host, host.retry, ticket)
            slot = host.semaphore
            if slot is not None and _io.try_acquire(slot):
                return self._in_slot(slot, request, host, host.retry, ticket)
        if retry is None:
            retry = host.retry
        if ticket is None and self._plain:  # rejected, with no listener to run after
            return self._reject(request, host, None)
        return self._guarded(request, host, retry, ticket)

    def _grouped(self, request: httpx.Request, logical: Host, retry: RetryPolicy) -> httpx.Response:
        """A call to a logical host: the endpoint its group picks takes it from
        here; when none admits it, the logical host rejects it."""
        assert logical.group is not None
        admitted = logical.group.admit()
        if admitted is None:
            return self._guarded(request, logical, retry, None)
        endpoint, ticket = admitted
        return self._guarded(request, endpoint, retry, ticket)

    def _guarded(
        self, request: httpx.Request, host: Host, retry: RetryPolicy, ticket: Ticket | None
    ) -> httpx.Response:
        """The general path: rejection, bulkhead, listeners. The async listener
        calls this call's work set off run before it returns; an error is
        raised after them, a cancellation at once (they finish detached)."""
        if not self._emitter.owing:
            return self._admitted(request, host, retry, ticket)
        owed, token = Emitter.collect()
        try:
            response = self._admitted(request, host, retry, ticket)
        except Exception:
            Emitter.stop_collecting(token)
            _io.settle(owed)
            raise
        except BaseException:
            Emitter.stop_collecting(token)
            _io.run_detached(owed)
            raise
        Emitter.stop_collecting(token)
        try:
            _io.settle(owed)
        except BaseException:  # cancelled while listeners ran: nobody gets the response
            with _io.shielded():
                response.close()
            raise
        return response

    def _admitted(
        self, request: httpx.Request, host: Host, retry: RetryPolicy, ticket: Ticket | None
    ) -> httpx.Response:
        if ticket is None:
            return self._reject(request, host, None)
        semaphore = host.semaphore
        if semaphore is None and host.policy.max_concurrency is not None:
            with self._registry.lock:  # one per host, however many threads ask at once
                if host.semaphore is None:
                    host.semaphore = _io.Semaphore(host.policy.max_concurrency)
                semaphore = host.semaphore
        if semaphore is None:
            return self._first(request, host, retry, ticket)
        wait, begun = host.policy.max_wait, None
        if retry.deadline is not None:  # the deadline counts the wait for a slot too
            begun = self._clock()
            wait = min(wait, retry.deadline)
        try:
            acquired = _io.acquire(semaphore, wait)
        except BaseException:  # cancelled while queued: give a probe slot back
            host.breaker.on_ignored(ticket)
            raise
        if not acquired:
            host.breaker.on_ignored(ticket)
            return self._reject(request, host, BulkheadFullError)
        return self._in_slot(semaphore, request, host, retry, ticket, begun)

    def _in_slot(
        self,
        slot: _io.Semaphore,
        request: httpx.Request,
        host: Host,
        retry: RetryPolicy,
        ticket: Ticket,
        begun: float | None = None,
    ) -> httpx.Response:
        """The call, in the bulkhead slot it holds (``begun``: when it started
        waiting for it): the slot is the call's until its body ends (read,
        closed or failed)."""
        try:
            response = self._first(request, host, retry, ticket, begun)
        except BaseException:
            slot.release()
            raise
        return when_body_ends(response, slot.release)

    def _first(
        self,
        request: httpx.Request,
        host: Host,
        retry: RetryPolicy,
        ticket: Ticket,
        begun: float | None = None,
    ) -> httpx.Response:
        """The call's first attempt (hedged, when the host hedges it): a healthy
        answer is watched and handed over; anything else goes to
        ``_after_first``. ``begun``: when the call started waiting for its
        bulkhead slot (its deadline counts from then)."""
        store = self._store  # a shared store grants half-open probes fleet-wide
        if store is not None and ticket.probe and not store.admit_probe(host.breaker, ticket):
            return self._reject(request, host, None)
        started = self._clock()
        if begun is None:
            begun = started
        budget = host.budget if retry is host.retry else host.budget_for(retry)
        if budget is not None:
            budget.deposit(started)
        body = request.stream  # before an inner transport can buffer and replace it
        deadline = math.inf if retry.deadline is None else begun + retry.deadline
        if deadline <= started:  # the wait for its slot took all its time: nothing is sent
            host.breaker.on_ignored(ticket)
            raise deadline_reached(request)
        outcome: httpx.Response | BaseException
        if host.hedge is not None and isinstance(body, httpx.ByteStream):
            ticket, outcome = self._attempt(
                request, host, ticket, deadline, is_idempotent(request, retry)
            )
        else:  # (the attempt awaited here, not through _attempt: one coroutine fewer)
            try:
                outcome = self._send(request, host, deadline)
            except BaseException as exc:
                outcome = exc
        if (
            isinstance(outcome, httpx.Response)
            and outcome.status_code not in host.unusual_statuses
            and retry is host.retry
            and host.policy.breaker.classify is None
        ):
            if outcome.is_closed and self._plain:  # nothing to report or keep
                timed = host.breaker.timed
                host.breaker.on_success(ticket, self._clock() - started if timed else 0.0)
                return outcome
            return self._watch(request, host, ticket, outcome, started)
        return self._after_first(
            request, host, retry, ticket, outcome, started, budget, body, begun
        )

    def _after_first(
        self,
        request: httpx.Request,
        host: Host,
        retry: RetryPolicy,
        ticket: Ticket,
        outcome: httpx.Response | BaseException,
        started: float,
        budget: BudgetState | None,
        body: object,
        begun: float,
    ) -> httpx.Response:
        """The first attempt ended (it ``started`` then; the call ``begun``
        then, its deadline's start): record it, then retry, or hand over its
        answer, or raise its error."""
        response: httpx.Response | None = None
        error: BaseException | None = None
        if isinstance(outcome, BaseException):
            if not self._record_error(request, host, ticket, outcome, started):
                raise outcome
            error = outcome
        elif self._judge(request, host, retry, ticket, outcome, started):
            response = outcome
        else:
            return outcome  # an answer to hand over, judged (or to be, at its body's end)
        if not can_retry(request, retry, isinstance(body, httpx.ByteStream)):
            if error is not None:
                raise error
            assert response is not None
            return response
        return self._retry_loop(request, host, retry, response, error, begun, budget)

    def _judge(
        self,
        request: httpx.Request,
        host: Host,
        retry: RetryPolicy,
        ticket: Ticket,
        response: httpx.Response,
        started: float,
    ) -> bool:
        """Record an attempt's status line; ``True`` when the status asks for a retry."""
        status = response.status_code
        verdict = status_outcome(status, host.failure_statuses)
        classify = host.policy.breaker.classify
        if classify is not None:
            verdict = classified(classify, request, response, verdict)
        retryable = status in retry.statuses
        if verdict == "success" and not retryable:
            self._watch(request, host, ticket, response, started)  # judged when the body ends
            return False
        # a failure, not counted, or retryable but alive (429): judged now
        self._record(request, host, ticket, verdict, self._clock() - started, status)
        return retryable

    def _retry_loop(
        self,
        request: httpx.Request,
        host: Host,
        retry: RetryPolicy,
        response: httpx.Response | None,
        error: BaseException | None,
        started: float,
        budget: BudgetState | None,
    ) -> httpx.Response:
        """Retries after a retryable first outcome. Ends with the last real
        outcome: a readable response, or the last error re-raised. The
        decisions are the plan's; the breaker is consulted before each wait is
        planned, before the backoff sleep (which an opening also cuts short),
        and before each retry."""
        plan = RetryPlan(retry, self._clock, started, budget)
        while True:
            wait = self._plan_wait(request, host, plan, response, error)
            if wait is None:
                break
            if wait > 0 and not self._backoff(host, wait) and host.is_rejecting():
                break  # the circuit opened while we slept: stop now
            admitted = self._admit_retry(host, plan)
            if admitted is None:
                break
            host, ticket = admitted  # an endpoint of a group: maybe another one
            plan.next_attempt(wait)
            attempt_started = self._clock()
            hedged = host.hedge is not None  # (only a retryable request gets here)
            ticket, new = self._attempt(request, host, ticket, plan.deadline, hedged)
            if isinstance(new, BaseException):
                if not self._record_error(request, host, ticket, new, attempt_started):
                    raise new
                if isinstance(new, DeadlineExceeded) and response is not None:
                    break  # the previous answer is more useful than "out of time"
                response, error = None, new
                continue
            if not self._judge(request, host, retry, ticket, new, attempt_started):
                return new
            response, error = new, None
        if error is not None:
            raise error
        assert response is not None
        return response

    def _plan_wait(
        self,
        request: httpx.Request,
        host: Host,
        plan: RetryPlan,
        response: httpx.Response | None,
        error: BaseException | None,
    ) -> float | None:
        """Seconds to wait before retrying after this outcome, or ``None``: stop.
        Makes a discarded response readable (too large: handed over as it is;
        still arriving at the deadline: cut) and announces the retry."""
        if host.is_rejecting():  # consulted before planning
            return None
        wait = plan.wait_for(response, error)
        if wait is None:
            return None
        if response is not None and not retain(request, response, self._clock, plan.deadline):
            return None
        if not plan.may_retry(wait):
            logger.debug("no time or retry budget left for %s; not retrying", host.key)
            return None
        if host.is_rejecting():  # consulted before the sleep
            return None
        reason = f"status {response.status_code}" if response is not None else _error_name(error)  # type: ignore[arg-type]
        logger.debug(
            "retrying %s on %s (attempt %d failed: %s) in %.3fs",
            request.method,
            host.key,
            plan.attempt,
            reason,
            wait,
        )
        if self._emitter.listeners:
            self._emitter.emit(RetryScheduled(host.key, request.method, plan.attempt, wait, reason))
        return wait

    def _attempt(
        self, request: httpx.Request, host: Host, ticket: Ticket, deadline: float, hedged: bool
    ) -> tuple[Ticket, httpx.Response | BaseException]:
        """One attempt (``hedged``: a race of them): the ticket of the attempt
        that answered, and its answer or error, not yet recorded."""
        if hedged:
            return self._race(request, host, ticket, deadline)
        try:
            return ticket, self._send(request, host, deadline)
        except BaseException as exc:
            return ticket, exc

    def _send(
        self, request: httpx.Request, host: Host, deadline: float
    ) -> _io.Pending[httpx.Response]:
        """What one attempt awaits (a plain function: no coroutine of its own)."""
        if deadline == math.inf and host.endpoint is None:
            return self._inner.handle_request(request)
        return _io.send_by(self._inner, _outgoing(request, host), self._clock, deadline)

    # -- hedging ------------------------------------------------------------------------

    def _race(
        self, request: httpx.Request, host: Host, ticket: Ticket, deadline: float
    ) -> tuple[Ticket, httpx.Response | Exception]:
        """An idempotent attempt and, when it has not answered in time, its
        hedges: the winner's ticket and answer or error (not yet recorded).
        Every other attempt is recorded here (cancelled: ignored) and closed.
        A cancelled call raises, its attempts already recorded."""
        hedge = host.hedge
        assert hedge is not None
        hedge.budget.deposit(self._clock())
        delay = hedge.delay()
        if delay is None:  # warming up: one attempt, timed to learn from
            won = self._try(request, host, ticket, None, deadline)
            return won[0], won[2]
        hedges: list[Ticket] = []

        def attempts(index: int) -> _io.Attempt[_Try] | None:
            if index == 0:
                return functools.partial(self._try, request, host, ticket, None, deadline)
            admitted = self._admit_hedge(host, hedge)
            if admitted is None:
                return None
            member, hedge_ticket, slot = admitted
            hedges.append(hedge_ticket)
            return functools.partial(
                self._try, _clone(request), member, hedge_ticket, slot, deadline
            )

        index, won = _io.race(
            attempts,
            delay,
            hedge.policy.max_hedges,
            functools.partial(_answered, host),
            functools.partial(self._lost, request, host),
        )
        if hedges:
            self._hedged(request, host, hedge, len(hedges), delay, index, won[2])
        return won[0], won[2]

    def _admit_hedge(
        self, host: Host, hedge: HedgeState
    ) -> tuple[Host, Ticket, _io.Semaphore | None] | None:
        """The host, ticket and bulkhead slot for a hedge (for an endpoint of a
        group, another endpoint first), or ``None``: hedges go only to a closed
        circuit, with a free slot and budget to spare."""
        slot = host.semaphore
        if slot is not None and not _io.try_acquire(slot):
            return None
        admitted = _admit(host, avoid=True)
        if admitted is not None:
            member, ticket = admitted
            if not ticket.probe and hedge.budget.try_withdraw(self._clock()):
                return member, ticket, slot
            member.breaker.on_ignored(ticket)
        if slot is not None:
            slot.release()
        return None

    def _try(
        self,
        request: httpx.Request,
        host: Host,
        ticket: Ticket,
        slot: _io.Semaphore | None,
        deadline: float,
    ) -> _Try:
        """One attempt of a race. Its error is returned; cancelled, it is
        recorded (ignored) and the cancellation goes on."""
        started = self._clock()
        try:
            response = _io.send_by(self._inner, _outgoing(request, host), self._clock, deadline)
        except Exception as exc:
            return ticket, started, exc
        except BaseException as exc:
            self._record_error(request, host, ticket, exc, started)
            raise
        finally:
            if slot is not None:  # a hedge's own slot: the call keeps its own
                slot.release()
        if host.hedge is not None:  # latency to the status line
            host.hedge.latency.add(self._clock() - started)
        return ticket, started, response

    def _lost(self, request: httpx.Request, host: Host, lost: _Try) -> None:
        """Record an attempt that finished but lost the race, and close it."""
        ticket, started, outcome = lost
        if isinstance(outcome, Exception):
            self._record_error(request, host, ticket, outcome, started)
            return
        status = outcome.status_code
        verdict = status_outcome(status, host.failure_statuses)
        self._record(request, host, ticket, verdict, self._clock() - started, status)
        with _io.shielded():
            outcome.close()

    def _hedged(
        self,
        request: httpx.Request,
        host: Host,
        hedge: HedgeState,
        sent: int,
        delay: float,
        winner: int,
        outcome: httpx.Response | Exception,
    ) -> None:
        hedge.sent += sent
        if winner:
            hedge.won += 1
        if isinstance(outcome, httpx.Response):
            outcome.extensions[HEDGE_EXTENSION] = winner
        if self._emitter.listeners:
            self._emitter.emit(Hedged(host.key, request.method, sent, delay, winner))

    def _admit_retry(self, host: Host, plan: RetryPlan) -> tuple[Host, Ticket] | None:
        """The host and ticket for the next attempt, or ``None``: out of time
        (nothing is sent, nothing counted), or the breaker (consulted before
        the retry) or the fleet store rejects it. An endpoint of a group hands
        the retry to another endpoint when one admits it."""
        if not plan.has_time():
            return None
        admitted = _admit(host, avoid=True)
        if admitted is None:
            return None
        host, ticket = admitted
        store = self._store
        if store is not None and ticket.probe and not store.admit_probe(host.breaker, ticket):
            return None
        return host, ticket

    def _backoff(self, host: Host, wait: float) -> bool:
        """Sleep ``wait`` seconds before a retry; ``False`` when the host's circuit
        opened meanwhile (the transition cancels the sleep)."""
        sleeper = _io.Sleeper()
        host.sleepers.add(sleeper)
        try:
            return sleeper.sleep(self._sleep, wait)
        finally:
            host.sleepers.discard(sleeper)

    # -- outcomes -----------------------------------------------------------------

    def _record(
        self,
        request: httpx.Request,
        host: Host,
        ticket: Ticket,
        outcome: Outcome,
        duration: float,
        status: int | None,
        error: str | None = None,
    ) -> None:
        # The attempt's event goes out before the breaker hears the verdict, so
        # listeners see cause before effect: AttemptFinished, then StateChanged.
        emitter = self._emitter
        try:
            if emitter.listeners:
                if emitter.attempt_hooks is None:
                    emitter.emit(
                        AttemptFinished(host.key, request.method, outcome, duration, status, error)
                    )
                else:  # every listener takes the fields: no event to build
                    emitter.attempt_finished(
                        host.key, request.method, outcome, duration, status, error
                    )
        finally:  # (a listener's BaseException goes on up: the verdict still counts)
            breaker = host.breaker
            if self._store is not None:  # before the breaker: it judges its prior state
                self._store.record(breaker, ticket, outcome)
            if outcome == "success":
                breaker.on_success(ticket, duration)
            elif outcome == "failure":
                breaker.on_failure(ticket, duration)
            else:
                breaker.on_ignored(ticket)

    def _record_error(
        self,
        request: httpx.Request,
        host: Host,
        ticket: Ticket,
        exc: BaseException,
        started: float,
    ) -> bool:
        """Record an attempt that raised; ``True`` when it is a counted failure."""
        verdict = self._error_verdict(request, host, exc)
        self._record(
            request, host, ticket, verdict, self._clock() - started, None, _error_name(exc)
        )
        return verdict == "failure"

    @staticmethod
    def _error_verdict(request: httpx.Request, host: Host, exc: BaseException) -> Outcome:
        verdict = error_outcome(exc)
        classify = host.policy.breaker.classify
        if classify is not None and isinstance(exc, Exception):  # never a cancellation
            verdict = classified(classify, request, exc, verdict)
        return verdict

    def _watch(
        self,
        request: httpx.Request,
        host: Host,
        ticket: Ticket,
        response: httpx.Response,
        started: float,
    ) -> httpx.Response:
        """A successful status line. Probes are judged on it; other calls are
        judged when their body ends, without buffering anything."""
        stream = response.stream
        cache = self._stale_cache
        if response.is_closed or not isinstance(stream, httpx.SyncByteStream):
            now = self._clock()
            self._record(request, host, ticket, "success", now - started, response.status_code)
            if cache is not None and hasattr(response, "_content"):
                cache.keep(request, response, _as_sent(response), now)
            return response
        capture = cache is not None and cache.storable(request, response)
        if ticket.probe:  # probes are judged on the status line
            duration = self._clock() - started
            self._record(request, host, ticket, "success", duration, response.status_code)
            if not capture:
                return response
        on_end = functools.partial(
            self._body_ended, request, host, None if ticket.probe else ticket, started, response
        )
        limit = cache.max_entry_bytes if capture and cache is not None else None
        response.stream = ObservedStream(stream, on_end, limit)
        return response

    def _body_ended(
        self,
        request: httpx.Request,
        host: Host,
        ticket: Ticket | None,
        started: float,
        response: httpx.Response,
        exc: BaseException | None,
        body: bytes | None,
    ) -> list[Awaitable[object]]:
        """A watched body ended: keep it for the stale cache if it came in full,
        and record the call's verdict (``ticket`` ``None``: already recorded).
        Returns the async listener calls that verdict set off."""
        cache = self._stale_cache
        if body is not None and cache is not None:
            cache.store(request, response, body, self._clock())
        if ticket is None:
            return []
        outcome: Outcome = "success" if exc is None else self._error_verdict(request, host, exc)
        owed, token = Emitter.collect()  # the listeners of this verdict are the reader's
        try:
            self._record(
                request,
                host,
                ticket,
                outcome,
                self._clock() - started,
                response.status_code,
                None if exc is None else _error_name(exc),
            )
        finally:
            Emitter.stop_collecting(token)
        return owed

    # -- rejection ------------------------------------------------------------------

    def _reject(
        self,
        request: httpx.Request,
        host: Host,
        kind: type[BulkheadFullError] | None,
    ) -> httpx.Response:
        """Answer a rejected call: the stale cache, else the host's fallback,
        else the rejection error raised."""
        error = self._rejection(request, host, kind)
        emitter = self._emitter
        if emitter.listeners:
            emitter.emit(CallRejected(host.key, request.method, error.reason, error.retry_after))
        response = self._stale_answer(request)
        source = "stale_cache"
        if response is None:
            response = self._fallback_answer(request, host, error)
            source = "fallback"
        response.extensions[FALLBACK_EXTENSION] = error.reason
        if emitter.listeners:
            emitter.emit(FallbackServed(host.key, request.method, error.reason, source))
        return response

    def _rejection(
        self, request: httpx.Request, host: Host, kind: type[BulkheadFullError] | None
    ) -> RejectedError:
        if kind is not None:
            assert host.policy.max_concurrency is not None
            return kind(host.key, host.policy.max_concurrency, request=request)
        group = host.group
        if group is not None and host.endpoint is None:  # no endpoint admits the call
            retry_after = group.retry_after()
        else:
            retry_after = host.breaker.retry_after
        if self._store_wait is not None:  # a fleet-wide probe may keep it shut longer
            retry_after = max(retry_after, self._store_wait(host.breaker))
        return CircuitOpenError(host.key, retry_after, request=request)

    def _stale_answer(self, request: httpx.Request) -> httpx.Response | None:
        cache = self._stale_cache
        if cache is None or request.method != "GET":
            return None
        found = cache.find(request, self._clock())
        if found is None:
            return None
        status, headers, body = found
        return httpx.Response(
            status, headers=headers, stream=httpx.ByteStream(body), request=request
        )

    def _fallback_answer(
        self, request: httpx.Request, host: Host, error: RejectedError
    ) -> httpx.Response:
        fallback = host.fallback
        if fallback is None:
            raise error
        result = _io.fallback_result(fallback(request, error))
        if not isinstance(result, httpx.Response):
            raise TypeError(
                f"fallback {_fn_name(fallback)} for {host.key} returned "
                f"{type(result).__name__}, expected httpx.Response"
            )
        return result
