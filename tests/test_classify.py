"""``BreakerPolicy(classify=...)``: what counts as a failure is the user's call
(README, "Your own classification"): a gateway that answers 200 with errors,
a 429 that means "down", an exception that is the caller's fault."""

from __future__ import annotations

import logging

import httpx
import pytest
import tenacity

from resilient_http import (
    BreakerPolicy,
    CircuitOpenError,
    CircuitState,
    Policy,
    ResilientTransport,
    RetryPolicy,
)
from resilient_http.testing import FakeClock

from .server import LiveServer


class CallersBug(httpx.TransportError):
    """An inner transport's own error that is the caller's fault."""


def classify(request: httpx.Request, subject: httpx.Response | BaseException) -> str | None:
    if isinstance(subject, httpx.Response):
        if subject.headers.get("x-graphql-errors"):
            return "failure"  # a 200 carrying errors
        if subject.status_code == 429 and request.url.host == "strict.example.com":
            return "failure"  # this host's 429 means it is down
        if subject.status_code == 503 and request.url.path == "/maintenance":
            return "ignored"  # planned: not the host's health
        if subject.status_code == 500 and request.url.path == "/known-bug":
            return "success"
        return None
    if isinstance(subject, CallersBug):
        return "ignored"
    if isinstance(subject, httpx.ReadTimeout) and request.url.path == "/slow-on-purpose":
        return "success"
    return None


def make(
    clock: FakeClock, handler: object, *, attempts: int = 1
) -> tuple[ResilientTransport, httpx.AsyncClient]:
    transport = ResilientTransport(
        httpx.MockTransport(handler),  # type: ignore[arg-type]
        policy=Policy(
            breaker=BreakerPolicy(failure_threshold=2, classify=classify),  # type: ignore[arg-type]
            retry=RetryPolicy(attempts=attempts, wait=tenacity.wait_none(), budget=None),
        ),
        clock=clock,
        sleep=clock.sleep,
    )
    return transport, httpx.AsyncClient(transport=transport)


def state(transport: ResilientTransport, url: str) -> dict[str, object]:
    return transport.snapshot()[transport.breaker(url).key]


async def test_a_200_with_errors_can_be_a_failure(clock: FakeClock) -> None:
    _, client = make(clock, lambda request: httpx.Response(200, headers={"x-graphql-errors": "1"}))
    async with client:
        for _ in range(2):
            assert (await client.get("https://graphql.example.com/")).status_code == 200
        with pytest.raises(CircuitOpenError):
            await client.get("https://graphql.example.com/")


async def test_a_429_can_mean_down_for_one_host_only(clock: FakeClock) -> None:
    transport, client = make(clock, lambda request: httpx.Response(429))
    async with client:
        for _ in range(3):
            await client.get("https://lenient.example.com/")
        for _ in range(2):
            await client.get("https://strict.example.com/")
    assert transport.breaker("https://lenient.example.com/").state is CircuitState.CLOSED
    assert transport.breaker("https://strict.example.com/").state is CircuitState.OPEN


async def test_statuses_can_be_left_uncounted_or_counted_as_successes(clock: FakeClock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503 if request.url.path == "/maintenance" else 500)

    transport, client = make(clock, handler)
    async with client:
        for _ in range(3):
            await client.get("https://api.example.com/maintenance")
            await client.get("https://api.example.com/known-bug")
    assert state(transport, "https://api.example.com/")["consecutive_failures"] == 0
    assert transport.breaker("https://api.example.com/").state is CircuitState.CLOSED


async def test_an_exception_can_be_the_callers_fault(clock: FakeClock) -> None:
    attempts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        if request.url.path == "/slow-on-purpose":
            raise httpx.ReadTimeout("slow, as asked", request=request)
        raise CallersBug("bad credentials file", request=request)

    transport, client = make(clock, handler, attempts=3)
    async with client:
        for _ in range(3):
            with pytest.raises(CallersBug):
                await client.get("https://api.example.com/")
        with pytest.raises(httpx.ReadTimeout):
            await client.get("https://api.example.com/slow-on-purpose")
    assert attempts == 4  # neither is retried: only counted failures are
    assert state(transport, "https://api.example.com/")["consecutive_failures"] == 0


async def test_none_keeps_the_default_verdict(clock: FakeClock) -> None:
    _, client = make(clock, lambda request: httpx.Response(502))
    async with client:
        for _ in range(2):
            await client.get("https://api.example.com/")
        with pytest.raises(CircuitOpenError):
            await client.get("https://api.example.com/")


@pytest.mark.parametrize("broken", ["raises", "answers nonsense"])
async def test_a_broken_hook_is_logged_and_the_default_holds(
    clock: FakeClock, caplog: pytest.LogCaptureFixture, broken: str
) -> None:
    def hook(request: httpx.Request, subject: object) -> object:
        if broken == "raises":
            raise RuntimeError("hook bug")
        return "down"

    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(503)),
        policy=Policy(
            breaker=BreakerPolicy(failure_threshold=1, classify=hook),  # type: ignore[arg-type]
            retry=RetryPolicy(attempts=1),
        ),
        clock=clock,
    )
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get("https://api.example.com/")).status_code == 503
    assert transport.breaker("https://api.example.com/").state is CircuitState.OPEN
    assert any(
        r.levelno >= logging.WARNING and "classify" in r.getMessage() for r in caplog.records
    )


async def test_the_hook_sees_the_status_line_never_the_body(
    live: LiveServer, clock: FakeClock
) -> None:
    seen: list[bool] = []

    def hook(request: httpx.Request, subject: httpx.Response | BaseException) -> None:
        assert isinstance(subject, httpx.Response)
        seen.append(subject.is_stream_consumed)

    transport = ResilientTransport(
        policy=Policy(breaker=BreakerPolicy(classify=hook), retry=RetryPolicy(attempts=1)),
        clock=clock,
    )
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(f"{live.url}/drip?n=3&interval=0")
    assert response.text == "chunk 0\nchunk 1\nchunk 2\n"
    assert seen == [False]


def test_a_hook_that_is_not_callable_is_refused() -> None:
    with pytest.raises(TypeError, match=r"BreakerPolicy\.classify.*callable.*42"):
        BreakerPolicy(classify=42)  # type: ignore[arg-type]
