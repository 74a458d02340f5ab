# Generated from resilient_http/_failures.py by tests/codegen.py: do not edit.
"""Which errors are the upstream's fault: the part of the outcome rules that
names httpx2's exception classes (``resilient_http.httpx2`` has its own twin)."""

from __future__ import annotations

import httpx2

from resilient_http._outcomes import Outcome

__all__ = ["FAILURE_ERRORS", "error_outcome", "is_failure"]


#: Errors that are the upstream's fault.
FAILURE_ERRORS = (
    httpx2.TimeoutException,
    httpx2.NetworkError,
    httpx2.RemoteProtocolError,
    httpx2.DecodingError,
)


def is_failure(exc: BaseException) -> bool:
    """Is this error the upstream's fault? ``httpx2.PoolTimeout`` is not: it means
    *our* connection pool is full (often of calls hung on another host), and
    counting it would let one sick host open a healthy host's circuit."""
    return isinstance(exc, FAILURE_ERRORS) and not isinstance(exc, httpx2.PoolTimeout)


def error_outcome(exc: BaseException) -> Outcome:
    return "failure" if is_failure(exc) else "ignored"
