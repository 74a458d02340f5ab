# Generated from resilient_http/_fallbacks.py by tests/codegen.py: do not edit.
"""Ready-made fallbacks."""

from __future__ import annotations

import math

import httpx2

from ._exceptions import RejectedError

__all__ = ["service_unavailable"]


def service_unavailable(request: httpx2.Request, error: RejectedError) -> httpx2.Response:
    """Answer a rejected call with ``503 Service Unavailable`` instead of raising.

    - ``Retry-After``: ``error.retry_after`` in whole seconds, rounded up
      (left out while the circuit is held open by hand: there is no time to give);
    - ``x-should-retry: false``: SDKs generated like openai's and anthropic's
      honour it before anything else, so a rejected call fails at once instead
      of being retried with the SDK's own backoff against an open circuit;
    - a small JSON body naming the reason and the breaker key (never the URL).

    Register it like any fallback::

        transport.fallback("*.example.com", service_unavailable)
    """
    headers = {"x-should-retry": "false"}
    if math.isfinite(error.retry_after):
        headers["Retry-After"] = str(math.ceil(max(0.0, error.retry_after)))
    body: dict[str, object] = {"error": error.reason, "host": error.host}
    if math.isfinite(error.retry_after):
        body["retry_after"] = round(error.retry_after, 3)
    return httpx2.Response(503, headers=headers, json=body, request=request)
