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

import logging
from collections.abc import Callable, Container
from typing import Literal, TypeAlias

import httpx

__all__ = [
    "FAILURE_ERRORS",
    "Classifier",
    "Outcome",
    "classified",
    "error_outcome",
    "is_failure",
    "status_outcome",
]

Outcome: TypeAlias = Literal["success", "failure", "ignored"]

#: ``BreakerPolicy(classify=...)``: ``fn(request, response_or_error)`` returns
#: ``"failure"``, ``"success"``, ``"ignored"``, or ``None`` for the default verdict.
#: A response is given at its status line: its body is never read for this.
Classifier: TypeAlias = Callable[
    [httpx.Request, "httpx.Response | BaseException"], "Outcome | None"
]

_OUTCOMES = frozenset({"success", "failure", "ignored"})
logger = logging.getLogger("resilient_http")

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


def classified(
    classify: Classifier,
    request: httpx.Request,
    subject: httpx.Response | BaseException,
    default: Outcome,
) -> Outcome:
    """The user's verdict on an attempt, or ``default`` when it has none. A
    classifier that raises or answers nonsense is logged, and the default holds:
    a bug in it must not break the request or silence the breaker."""
    try:
        verdict = classify(request, subject)
    except Exception:
        logger.exception("resilient_http classify hook %r raised; using the default", classify)
        return default
    if verdict is None:
        return default
    if verdict not in _OUTCOMES:
        logger.warning(
            "resilient_http classify hook %r returned %r, not 'success', 'failure', 'ignored' "
            "or None; using the default",
            classify,
            verdict,
        )
        return default
    return verdict
