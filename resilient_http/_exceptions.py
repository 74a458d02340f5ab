"""The exception tree.

Every rejection is an ``httpx.TransportError``, so code that already handles
``httpx.HTTPError`` (or ``httpx.RequestError``) keeps working unchanged::

    httpx.HTTPError
    └── httpx.RequestError
        └── httpx.TransportError
            ├── RejectedError            the call never reached the upstream
            │   ├── CircuitOpenError     the host's circuit is open (or half-open and busy)
            │   └── BulkheadFullError    no free concurrency slot within ``max_wait``
            └── httpx.TimeoutException
                └── DeadlineExceeded     ``RetryPolicy.deadline`` ran out

Rejections are never counted as breaker failures.
"""

from __future__ import annotations

import math

import httpx

__all__ = ["BulkheadFullError", "CircuitOpenError", "DeadlineExceeded", "RejectedError"]


class RejectedError(httpx.TransportError):
    """A call rejected by resilient_http before it touched the network.

    ``host`` is the breaker key (``"api.example.com:443"``), never a full URL.
    ``reason`` is a short machine-readable string (``"circuit_open"``,
    ``"bulkhead_full"``), the same one a fallback response is marked with.
    ``retry_after`` is the number of seconds after which a new call may be
    admitted (``0.0`` unless the subclass knows better).
    """

    reason: str = "rejected"
    retry_after: float = 0.0

    def __init__(self, message: str, *, host: str, request: httpx.Request | None = None) -> None:
        super().__init__(message, request=request)
        self.host = host


class CircuitOpenError(RejectedError):
    """The host's circuit is open: the call was rejected at once.

    ``retry_after`` is the number of seconds until a probe may go through
    (``0.0`` when the circuit is half-open and its probe slots are busy,
    ``math.inf`` while the circuit is held open with ``Breaker.force_open()``).
    """

    reason = "circuit_open"

    def __init__(
        self, host: str, retry_after: float, *, request: httpx.Request | None = None
    ) -> None:
        when = "held open" if math.isinf(retry_after) else f"retry in {retry_after:.2f}s"
        super().__init__(f"circuit open for {host} ({when})", host=host, request=request)
        self.retry_after = retry_after


class BulkheadFullError(RejectedError):
    """No concurrency slot for the host became free within ``Policy.max_wait``
    (or before the call's retry deadline, when that comes first).

    Not a breaker failure: the upstream was never called.
    """

    reason = "bulkhead_full"

    def __init__(
        self, host: str, max_concurrency: int, *, request: httpx.Request | None = None
    ) -> None:
        super().__init__(
            f"bulkhead full for {host} ({max_concurrency} calls in flight)",
            host=host,
            request=request,
        )
        self.max_concurrency = max_concurrency


class DeadlineExceeded(httpx.TimeoutException):
    """``RetryPolicy.deadline`` ran out: an attempt still running was cut (a
    timeout, so counted as a failure), or a response body still arriving when
    it was read for a retry was cut."""


def deadline_reached(request: httpx.Request) -> DeadlineExceeded:
    """The error of a call whose deadline ran out before or during an attempt."""
    return DeadlineExceeded(f"retry deadline reached for {request.method}", request=request)
