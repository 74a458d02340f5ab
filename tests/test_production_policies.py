"""Rate mode, slow calls, body phase, growing break time, deadline,
retry budget, bulkhead, per-request override, stale-while-open.

The binding-independent tests live in tests/contract/test_production_policies.py;
what stays here is async only: a deadline cancelling a hung attempt mid-flight."""

from __future__ import annotations

import anyio
import httpx
import pytest
import tenacity

from resilient_http import (
    Policy,
    ResilientTransport,
    RetryPolicy,
)

NO_WAIT = tenacity.wait_none()


# -- deadline ------------------------------------------------------------------------------


async def test_deadline_cuts_a_hanging_attempt() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    transport = ResilientTransport(
        httpx.MockTransport(hang),
        policy=Policy(retry=RetryPolicy(deadline=0.05, wait=NO_WAIT)),
    )
    async with httpx.AsyncClient(transport=transport) as client:
        with anyio.fail_after(5):
            with pytest.raises(httpx.TimeoutException):
                await client.get("https://api.test/")
    assert transport.breaker("api.test").failure_count == 1
