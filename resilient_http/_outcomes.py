"""How an attempt ended, as the breaker counts it (sans-IO).

An attempt's verdict is one :data:`Outcome`:

- ``"failure"``: the upstream's fault: it timed out, dropped the connection,
  broke the protocol, sent a body that does not decode, or answered with one of
  the breaker's failure statuses (5xx by default);
- ``"success"``: it answered, and the answer was not a failure (4xx included);
- ``"ignored"``: no verdict: the call was cancelled, or failed through no fault
  of the upstream (an invalid URL, our own connection pool being full).
"""

from __future__ import annotations

from collections.abc import Container
from typing import Literal, TypeAlias

import httpx

__all__ = ["FAILURE_ERRORS", "Outcome", "error_outcome", "is_failure", "status_outcome"]

Outcome: TypeAlias = Literal["success", "failure", "ignored"]

#: Errors that are the upstream's fault.
FAILURE_ERRORS = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.DecodingError,
)


def is_failure(exc: BaseException) -> bool:
    """Is this error the upstream's fault? ``httpx.PoolTimeout`` is not: it means
    *our* connection pool is full (often of calls hung on another host), and
    counting it would let one sick host open a healthy host's circuit."""
    return isinstance(exc, FAILURE_ERRORS) and not isinstance(exc, httpx.PoolTimeout)


def error_outcome(exc: BaseException) -> Outcome:
    return "failure" if is_failure(exc) else "ignored"


def status_outcome(status: int, failure_statuses: Container[int]) -> Outcome:
    return "failure" if status in failure_statuses else "success"
