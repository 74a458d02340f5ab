"""Testing code that uses resilient_http (README, "Testing your code"): the
``resilient_http`` pytest fixture and ``isolated()`` give every test fresh
breakers and no real sleeps, whoever built the transports; respx mocks below
the breaker."""

from __future__ import annotations

import time

import httpx
import pytest
import respx
from pytest_httpx import HTTPXMock

from resilient_http import (
    BreakerPolicy,
    CircuitOpenError,
    CircuitState,
    Policy,
    ResilientTransport,
)
from resilient_http.testing import FakeClock, isolated

statuses: list[int] = []

#: Built once, at import time, as application code often does.
SHARED = ResilientTransport(
    httpx.MockTransport(lambda request: httpx.Response(statuses.pop(0) if statuses else 200)),
    policy=Policy(breaker=BreakerPolicy(failure_threshold=1, recovery_timeout=30)),
)


async def test_isolated_blocks_start_afresh_and_leave_nothing_behind() -> None:
    async with httpx.AsyncClient(transport=SHARED) as client:
        with isolated():
            statuses[:] = [500]
            await client.get("https://api.example.com/")
            with pytest.raises(CircuitOpenError):
                await client.get("https://api.example.com/")
        with isolated():  # the next test: a fresh breaker
            assert (await client.get("https://api.example.com/")).status_code == 200
    assert SHARED.snapshot() == {}  # and nothing left once it is over
    assert SHARED._clock is time.monotonic  # its own clock is back


async def test_retry_waits_are_recorded_not_slept() -> None:
    statuses[:] = [429, 429]  # retried, and no failure: the circuit stays closed
    async with httpx.AsyncClient(transport=SHARED) as client:
        with isolated() as clock:
            started = time.monotonic()
            assert (await client.get("https://api.example.com/")).status_code == 200
            assert time.monotonic() - started < 1.0
            assert len(clock.sleeps) == 2  # two backoffs, taken at once
            clock.advance(5)


async def test_transports_built_inside_use_the_fake_clock_until_the_end() -> None:
    with isolated() as clock:
        transport = ResilientTransport(
            httpx.MockTransport(lambda request: httpx.Response(500)),
            policy=Policy(breaker=BreakerPolicy(failure_threshold=1, recovery_timeout=30)),
        )
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get("https://api.example.com/")
            assert transport.breaker("https://api.example.com/").state is CircuitState.OPEN
            clock.advance(30)  # no sleeping through a recovery timeout
            assert transport.breaker("https://api.example.com/").state is CircuitState.HALF_OPEN
    assert transport._clock is time.monotonic


def test_the_pytest_fixture(pytester: pytest.Pytester) -> None:
    """Two tests share one transport built at import time; the fixture keeps
    the first test's open circuit out of the second."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        import httpx, pytest
        from resilient_http import BreakerPolicy, CircuitOpenError, Policy, ResilientTransport

        SHARED = ResilientTransport(
            httpx.MockTransport(lambda request: httpx.Response(500)),
            policy=Policy(breaker=BreakerPolicy(failure_threshold=1)),
        )

        def get(url):
            import anyio

            async def go():
                async with httpx.AsyncClient(transport=SHARED) as client:
                    return await client.get(url)

            return anyio.run(go)

        def test_one(resilient_http):
            assert get("https://api.example.com/").status_code == 500
            with pytest.raises(CircuitOpenError):
                get("https://api.example.com/")

        def test_two(resilient_http):
            assert get("https://api.example.com/").status_code == 500  # not rejected
            resilient_http.advance(60)
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


async def test_respx_mocks_below_the_breaker(clock: FakeClock) -> None:
    """respx's default mocker patches httpcore: the breaker sees its answers."""
    transport = ResilientTransport(
        policy=Policy(breaker=BreakerPolicy(failure_threshold=2)), clock=clock, sleep=clock.sleep
    )
    async with httpx.AsyncClient(transport=transport) as client, respx.mock:
        route = respx.get("https://api.example.com/items").mock(return_value=httpx.Response(503))
        assert (await client.get("https://api.example.com/items")).status_code == 503
        assert route.call_count == 2  # a retry, then the circuit opened: no third try
        with pytest.raises(CircuitOpenError):
            await client.get("https://api.example.com/items")
        assert route.call_count == 2  # rejected without reaching the mock


# -- recipes with pytest-asyncio and pytest-httpx (README, "Testing your code") --------


@pytest.mark.asyncio
async def test_with_pytest_asyncio(resilient_http: FakeClock) -> None:
    """pytest-asyncio runs the test; the fixture still gives fresh breakers."""
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(503)),
        policy=Policy(breaker=BreakerPolicy(failure_threshold=1, recovery_timeout=30)),
    )
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get("https://api.example.com/")).status_code == 503
        with pytest.raises(CircuitOpenError):
            await client.get("https://api.example.com/")
        resilient_http.advance(30)  # the probe may go now, without sleeping
        assert (await client.get("https://api.example.com/")).status_code == 503


async def test_with_pytest_httpx(httpx_mock: HTTPXMock, resilient_http: FakeClock) -> None:
    """pytest-httpx answers below the breaker. Our retries ask again, so a
    response meant for several calls is registered ``is_reusable=True``."""
    httpx_mock.add_response(url="https://api.example.com/items", status_code=503, is_reusable=True)
    transport = ResilientTransport(policy=Policy(breaker=BreakerPolicy(failure_threshold=2)))
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get("https://api.example.com/items")).status_code == 503
        assert len(httpx_mock.get_requests()) == 2  # a retry, then the circuit opened
        with pytest.raises(CircuitOpenError):
            await client.get("https://api.example.com/items")
    assert len(httpx_mock.get_requests()) == 2
