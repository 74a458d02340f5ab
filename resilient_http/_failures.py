"""Which errors are the upstream's fault: the part of the outcome rules that
names httpx's exception classes (``resilient_http.httpx2`` has its own twin)."""

from __future__ import annotations

import httpx

from resilient_http._outcomes import Outcome

__all__ = ["FAILURE_ERRORS", "error_outcome", "is_failure"]


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
