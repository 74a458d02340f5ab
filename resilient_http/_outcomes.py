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
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

if TYPE_CHECKING:
    from ._types import Request, Response

__all__ = [
    "Classifier",
    "Outcome",
    "classified",
    "status_outcome",
]

Outcome: TypeAlias = Literal["success", "failure", "ignored"]

#: ``BreakerPolicy(classify=...)``: ``fn(request, response_or_error)`` returns
#: ``"failure"``, ``"success"``, ``"ignored"``, or ``None`` for the default verdict.
#: A response is given at its status line: its body is never read for this.
#: Either library's objects (httpx or httpx2), hence ``Any``.
Classifier: TypeAlias = Callable[[Any, Any], "Outcome | None"]

_OUTCOMES = frozenset({"success", "failure", "ignored"})
logger = logging.getLogger("resilient_http")


def status_outcome(status: int, failure_statuses: Container[int]) -> Outcome:
    return "failure" if status in failure_statuses else "success"


def classified(
    classify: Classifier,
    request: Request,
    subject: Response | BaseException,
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
