"""Policies: small, frozen, validated configuration objects.

Every field is checked in ``__post_init__``; a bad value raises ``ValueError``
(or ``TypeError`` for a wrong type) naming the field and the value, at
construction, never at request time.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import httpx
import tenacity

from ._endpoints import BALANCES, Endpoint, parse_endpoint
from ._outcomes import Classifier

__all__ = [
    "DEFAULT_FAILURE_STATUSES",
    "DEFAULT_RETRY_METHODS",
    "DEFAULT_RETRY_STATUSES",
    "BreakerPolicy",
    "Fallback",
    "HedgePolicy",
    "Policy",
    "RetryBudget",
    "RetryPolicy",
]

Fallback: TypeAlias = Callable[..., "httpx.Response | Awaitable[httpx.Response]"]
"""``fn(request, error) -> httpx.Response``, sync or async. ``error`` is the
:class:`RejectedError` (a fallback may annotate it as ``CircuitOpenError``)."""

#: 5xx means the upstream (or something in front of it) is failing.
DEFAULT_FAILURE_STATUSES: frozenset[int] = frozenset(range(500, 600))
#: RFC 9110 idempotent methods: repeating them has the same effect as sending once.
DEFAULT_RETRY_METHODS: frozenset[str] = frozenset(
    {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}
)
#: Transient answers worth another try; 500 is usually a bug, not a blip.
DEFAULT_RETRY_STATUSES: frozenset[int] = frozenset({429, 502, 503, 504})


def _name(obj: object, attr: str) -> str:
    return f"{type(obj).__name__}.{attr}"


def _int(obj: object, attr: str, minimum: int) -> None:
    value = getattr(obj, attr)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{_name(obj, attr)} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{_name(obj, attr)} must be >= {minimum}, got {value!r}")


def _float(
    obj: object,
    attr: str,
    *,
    minimum: float = 0.0,
    strict: bool = False,
    maximum: float = math.inf,
    optional: bool = False,
) -> None:
    value = getattr(obj, attr)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{_name(obj, attr)} must be a number, got {value!r}")
    if math.isnan(value) or value < minimum or (strict and value == minimum) or value > maximum:
        low = f"> {minimum}" if strict else f">= {minimum}"
        high = "" if math.isinf(maximum) else f" and <= {maximum}"
        raise ValueError(f"{_name(obj, attr)} must be {low}{high}, got {value!r}")
    object.__setattr__(obj, attr, float(value))


def _statuses(obj: object, attr: str) -> None:
    value = getattr(obj, attr)
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{_name(obj, attr)} must be a set of status codes, got {value!r}")
    items = frozenset(value)
    for code in items:
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise ValueError(f"{_name(obj, attr)} contains an invalid status code {code!r}")
    object.__setattr__(obj, attr, items)


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a host's circuit opens, and how it recovers.

    Consecutive mode (the default): ``failure_threshold`` failures in a row open
    the circuit. Rate mode (``failure_rate`` set): over the last ``window``
    seconds, once at least ``minimum_calls`` calls finished, the circuit opens
    when the share of failures reaches ``failure_rate`` (or, with
    ``slow_call_duration`` set, the share of calls slower than it reaches
    ``slow_call_rate``).

    After ``recovery_timeout`` seconds open, up to ``half_open_max_calls``
    concurrent probes are let through; ``success_threshold`` probe successes
    close the circuit, any probe failure reopens it. With
    ``max_recovery_timeout`` set, each failed probe in a row doubles the next
    open period (with up to ±25% jitter) up to that cap.

    ``classify(request, response_or_error)`` is your own verdict on an attempt:
    ``"failure"``, ``"success"``, ``"ignored"`` (not counted), or ``None`` for
    the default (``failure_statuses``; timeouts, network and protocol errors).
    It sees a response at its status line (status and headers, never the body)
    or the attempt's exception, and decides what the breaker counts; retries
    still follow ``RetryPolicy``.
    """

    failure_threshold: int = 5
    recovery_timeout: float = 30.0
    half_open_max_calls: int = 1
    success_threshold: int = 1
    failure_statuses: Collection[int] = DEFAULT_FAILURE_STATUSES
    failure_rate: float | None = None
    minimum_calls: int = 20
    window: float = 10.0
    slow_call_duration: float | None = None
    slow_call_rate: float = 0.5
    max_recovery_timeout: float | None = None
    classify: Classifier | None = None

    def __post_init__(self) -> None:
        _int(self, "failure_threshold", 1)
        _float(self, "recovery_timeout")
        _int(self, "half_open_max_calls", 1)
        _int(self, "success_threshold", 1)
        _statuses(self, "failure_statuses")
        _float(self, "failure_rate", strict=True, maximum=1.0, optional=True)
        _int(self, "minimum_calls", 1)
        _float(self, "window", strict=True)
        _float(self, "slow_call_duration", strict=True, optional=True)
        _float(self, "slow_call_rate", strict=True, maximum=1.0)
        _float(self, "max_recovery_timeout", optional=True)
        if self.classify is not None and not callable(self.classify):
            raise TypeError(
                f"BreakerPolicy.classify must be callable or None, got {self.classify!r}"
            )
        if self.slow_call_duration is not None and self.failure_rate is None:
            raise ValueError(
                "BreakerPolicy.slow_call_duration needs rate mode: set failure_rate too "
                f"(got slow_call_duration={self.slow_call_duration!r}, failure_rate=None)"
            )
        if (
            self.max_recovery_timeout is not None
            and self.max_recovery_timeout < self.recovery_timeout
        ):
            raise ValueError(
                "BreakerPolicy.max_recovery_timeout must be >= recovery_timeout "
                f"({self.recovery_timeout!r}), got {self.max_recovery_timeout!r}"
            )

    @property
    def rate_mode(self) -> bool:
        return self.failure_rate is not None


@dataclass(frozen=True, slots=True)
class RetryBudget:
    """Per-host cap on retries (Finagle's model).

    Over the last ``window`` seconds, retries may add at most ``ratio`` of the
    requests made plus a reserve of ``min_per_second * window``, so retries
    cannot multiply the load on an upstream that is already struggling, while
    a quiet client can still retry.
    """

    ratio: float = 0.2
    min_per_second: float = 10.0
    window: float = 10.0

    def __post_init__(self) -> None:
        _float(self, "ratio")
        _float(self, "min_per_second")
        _float(self, "window", strict=True)


def _default_wait() -> tenacity.wait.wait_base:
    # Full jitter (AWS architecture blog): uniform in [0, min(10, 0.5 * 2**(n-1))].
    return tenacity.wait_random_exponential(multiplier=0.5, max=10)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a host's idempotent calls are retried.

    ``attempts`` counts the first try: ``attempts=1`` disables retries. ``wait``
    is any tenacity wait strategy. Only ``methods`` (and any request carrying
    an ``Idempotency-Key`` header) are retried, on the ``statuses`` listed and
    on timeouts, network and protocol errors; never a request whose body is a
    stream that cannot be replayed. ``Retry-After`` is honoured up to
    ``max_retry_after`` seconds; a longer one ends the retries. ``deadline``
    bounds the whole call (attempts and waits); ``budget`` caps retries per host.
    """

    attempts: int = 3
    wait: Callable[[tenacity.RetryCallState], float] = field(default_factory=_default_wait)
    methods: Collection[str] = DEFAULT_RETRY_METHODS
    statuses: Collection[int] = DEFAULT_RETRY_STATUSES
    respect_retry_after: bool = True
    max_retry_after: float = 60.0
    deadline: float | None = None
    budget: RetryBudget | None = field(default_factory=RetryBudget)

    def __post_init__(self) -> None:
        _int(self, "attempts", 1)
        if not callable(self.wait):
            raise TypeError(
                f"RetryPolicy.wait must be a tenacity wait strategy (a callable), got {self.wait!r}"
            )
        methods = self.methods
        if isinstance(methods, str | bytes) or not isinstance(methods, Iterable):
            raise TypeError(f"RetryPolicy.methods must be a set of method names, got {methods!r}")
        normalised = set()
        for method in methods:
            if not isinstance(method, str) or not method.isalpha():
                raise ValueError(f"RetryPolicy.methods contains an invalid method {method!r}")
            normalised.add(method.upper())
        object.__setattr__(self, "methods", frozenset(normalised))
        _statuses(self, "statuses")
        if not isinstance(self.respect_retry_after, bool):
            raise TypeError(
                f"RetryPolicy.respect_retry_after must be a bool, got {self.respect_retry_after!r}"
            )
        _float(self, "max_retry_after")
        _float(self, "deadline", strict=True, optional=True)
        if self.budget is not None and not isinstance(self.budget, RetryBudget):
            raise TypeError(
                f"RetryPolicy.budget must be a RetryBudget or None, got {self.budget!r}"
            )


def _default_hedge_budget() -> RetryBudget:
    return RetryBudget(ratio=0.1, min_per_second=1.0, window=10.0)


@dataclass(frozen=True, slots=True)
class HedgePolicy:
    """Hedged requests (``Policy(hedge=...)``; off by default): an idempotent
    call whose attempt has not answered after ``delay`` seconds sends up to
    ``max_hedges`` more attempts, and the first answer wins.

    ``delay=None`` learns the host's latency to the status line, per host,
    from its last 128 answers, and waits for the ``quantile`` of it. The
    warm-up: no hedge for the host's first 5 answers; until 20, a hedge goes
    after 4 times their median. ``budget`` caps the
    hedges themselves: over its window they may add at most ``ratio`` of the
    host's hedgeable calls plus ``min_per_second * window``, so hedging cannot
    multiply the load on an upstream that is slow because it is overloaded.
    """

    delay: float | None = None
    max_hedges: int = 1
    quantile: float = 0.95
    budget: RetryBudget = field(default_factory=_default_hedge_budget)

    def __post_init__(self) -> None:
        _float(self, "delay", optional=True)
        _int(self, "max_hedges", 1)
        _float(self, "quantile", strict=True, maximum=1.0)
        if not isinstance(self.budget, RetryBudget):
            raise TypeError(f"HedgePolicy.budget must be a RetryBudget, got {self.budget!r}")


@dataclass(frozen=True, slots=True)
class Policy:
    """One host's policy: its breaker, its retries, its fallback and its bulkhead.

    ``max_concurrency`` (off by default) caps the calls in flight to the host; a
    call that gets no slot within ``max_wait`` seconds is rejected with
    ``BulkheadFullError``. ``hedge`` (off by default) sends a second copy of a
    slow idempotent attempt (:class:`HedgePolicy`). ``fallback`` answers
    rejected calls when no fallback registered with
    ``ResilientTransport.fallback`` matches the host.

    ``endpoints`` makes the host a logical one served by several endpoints
    (absolute URLs: ``"https://a.example.com"``, ``"http://10.0.0.7:8080"``),
    each with its own breaker; only for a host pattern that names one host.
    ``balance`` picks among those that admit a call: ``"ordered"`` (the first,
    failover) or ``"round_robin"``. ``min_eligible`` caps ejection: an
    endpoint whose circuit opens while fewer than that many others take calls
    stays in rotation instead (0, the default: every endpoint may be ejected,
    and then the logical host rejects the call).
    """

    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    fallback: Fallback | None = None
    max_concurrency: int | None = None
    max_wait: float = 0.0
    hedge: HedgePolicy | None = None
    endpoints: Sequence[str] | None = None
    balance: str = "ordered"
    min_eligible: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.breaker, BreakerPolicy):
            raise TypeError(f"Policy.breaker must be a BreakerPolicy, got {self.breaker!r}")
        if not isinstance(self.retry, RetryPolicy):
            raise TypeError(f"Policy.retry must be a RetryPolicy, got {self.retry!r}")
        if self.fallback is not None and not callable(self.fallback):
            raise TypeError(f"Policy.fallback must be callable or None, got {self.fallback!r}")
        if self.max_concurrency is not None:
            _int(self, "max_concurrency", 1)
        _float(self, "max_wait")
        if self.hedge is not None and not isinstance(self.hedge, HedgePolicy):
            raise TypeError(f"Policy.hedge must be a HedgePolicy or None, got {self.hedge!r}")
        self._check_endpoints()

    def _check_endpoints(self) -> None:
        if self.balance not in BALANCES:
            raise ValueError(f"Policy.balance must be one of {BALANCES}, got {self.balance!r}")
        _int(self, "min_eligible", 0)
        endpoints = self.endpoints
        if endpoints is None:
            if self.min_eligible:
                raise ValueError("Policy.min_eligible needs endpoints")
            return
        if isinstance(endpoints, str | bytes) or not isinstance(endpoints, Iterable):
            raise TypeError(f"Policy.endpoints must be a sequence of URLs, got {endpoints!r}")
        parsed = [parse_endpoint(text) for text in endpoints]
        if not parsed:
            raise ValueError("Policy.endpoints must name at least one endpoint (or be None)")
        keys = [endpoint.key for endpoint in parsed]
        if len(set(keys)) != len(keys):
            raise ValueError(f"Policy.endpoints names one endpoint twice: {list(endpoints)!r}")
        if self.min_eligible >= len(parsed):
            raise ValueError(
                f"Policy.min_eligible must be below the number of endpoints ({len(parsed)}), "
                f"got {self.min_eligible!r}"
            )
        object.__setattr__(self, "endpoints", tuple(endpoints))

    @property
    def parsed_endpoints(self) -> tuple[Endpoint, ...]:
        """``endpoints``, parsed (empty when there are none)."""
        return tuple(parse_endpoint(text) for text in self.endpoints or ())
