"""``BreakerPolicy(classify=...)`` on every binding: what counts as a failure is
the user's call (README, "Your own classification"): a gateway that answers
200 with errors, a 429 that means "down", an exception that is the caller's
fault. The hook receives the binding's own request, response and errors."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import pytest
import tenacity

from resilient_http import BreakerPolicy, CircuitState, Policy, RetryPolicy
from resilient_http.testing import FakeClock

from ..bindings import Binding
from ..server import LiveServer


@functools.cache
def callers_bug(http: Any) -> type[Exception]:
    """An inner transport's own error that is the caller's fault, a
    ``TransportError`` of the binding's library."""
    error: type[Exception] = type(
        "CallersBug", (http.TransportError,), {"__doc__": callers_bug.__doc__}
    )
    return error


def classifier(binding: Binding) -> Callable[[Any, Any], str | None]:
    http = binding.http

    def classify(request: Any, subject: Any) -> str | None:
        if isinstance(subject, http.Response):
            if subject.headers.get("x-graphql-errors"):
                return "failure"  # a 200 carrying errors
            if subject.status_code == 429 and request.url.host == "strict.example.com":
                return "failure"  # this host's 429 means it is down
            if subject.status_code == 503 and request.url.path == "/maintenance":
                return "ignored"  # planned: not the host's health
            if subject.status_code == 500 and request.url.path == "/known-bug":
                return "success"
            return None
        if isinstance(subject, callers_bug(http)):
            return "ignored"
        if isinstance(subject, http.ReadTimeout) and request.url.path == "/slow-on-purpose":
            return "success"
        return None

    return classify


def make(
    binding: Binding, clock: FakeClock, handler: Callable[[Any], Any], *, attempts: int = 1
) -> tuple[Any, Any]:
    transport = binding.transport(
        binding.mock(handler),
        policy=Policy(
            breaker=BreakerPolicy(failure_threshold=2, classify=classifier(binding)),  # type: ignore[arg-type]
            retry=RetryPolicy(attempts=attempts, wait=tenacity.wait_none(), budget=None),
        ),
        clock=clock,
        sleep=clock.sleep,
    )
    return transport, binding.client(transport)


def state(transport: Any, url: str) -> dict[str, object]:
    snapshot: dict[str, object] = transport.snapshot()[transport.breaker(url).key]
    return snapshot


async def test_a_200_with_errors_can_be_a_failure(binding: Binding, clock: FakeClock) -> None:
    _, client = make(
        binding, clock, lambda request: binding.response(200, headers={"x-graphql-errors": "1"})
    )
    async with client:
        for _ in range(2):
            assert (await client.get("https://graphql.example.com/")).status_code == 200
        with pytest.raises(binding.api.CircuitOpenError):
            await client.get("https://graphql.example.com/")


async def test_a_429_can_mean_down_for_one_host_only(binding: Binding, clock: FakeClock) -> None:
    transport, client = make(binding, clock, lambda request: binding.response(429))
    async with client:
        for _ in range(3):
            await client.get("https://lenient.example.com/")
        for _ in range(2):
            await client.get("https://strict.example.com/")
    assert transport.breaker("https://lenient.example.com/").state is CircuitState.CLOSED
    assert transport.breaker("https://strict.example.com/").state is CircuitState.OPEN


async def test_statuses_can_be_left_uncounted_or_counted_as_successes(
    binding: Binding, clock: FakeClock
) -> None:
    def handler(request: Any) -> Any:
        return binding.response(503 if request.url.path == "/maintenance" else 500)

    transport, client = make(binding, clock, handler)
    async with client:
        for _ in range(3):
            await client.get("https://api.example.com/maintenance")
            await client.get("https://api.example.com/known-bug")
    assert state(transport, "https://api.example.com/")["consecutive_failures"] == 0
    assert transport.breaker("https://api.example.com/").state is CircuitState.CLOSED


async def test_an_exception_can_be_the_callers_fault(binding: Binding, clock: FakeClock) -> None:
    http = binding.http
    bug = callers_bug(http)
    attempts = 0

    def handler(request: Any) -> Any:
        nonlocal attempts
        attempts += 1
        if request.url.path == "/slow-on-purpose":
            raise http.ReadTimeout("slow, as asked", request=request)
        raise bug("bad credentials file", request=request)  # type: ignore[call-arg]

    transport, client = make(binding, clock, handler, attempts=3)
    async with client:
        for _ in range(3):
            with pytest.raises(bug):
                await client.get("https://api.example.com/")
        with pytest.raises(http.ReadTimeout):
            await client.get("https://api.example.com/slow-on-purpose")
    assert attempts == 4  # neither is retried: only counted failures are
    assert state(transport, "https://api.example.com/")["consecutive_failures"] == 0


async def test_none_keeps_the_default_verdict(binding: Binding, clock: FakeClock) -> None:
    _, client = make(binding, clock, lambda request: binding.response(502))
    async with client:
        for _ in range(2):
            await client.get("https://api.example.com/")
        with pytest.raises(binding.api.CircuitOpenError):
            await client.get("https://api.example.com/")


@pytest.mark.parametrize("broken", ["raises", "answers nonsense"])
async def test_a_broken_hook_is_logged_and_the_default_holds(
    binding: Binding, clock: FakeClock, caplog: pytest.LogCaptureFixture, broken: str
) -> None:
    def hook(request: Any, subject: object) -> object:
        if broken == "raises":
            raise RuntimeError("hook bug")
        return "down"

    transport = binding.transport(
        binding.mock(lambda request: binding.response(503)),
        policy=Policy(
            breaker=BreakerPolicy(failure_threshold=1, classify=hook),  # type: ignore[arg-type]
            retry=RetryPolicy(attempts=1),
        ),
        clock=clock,
    )
    async with binding.client(transport) as client:
        assert (await client.get("https://api.example.com/")).status_code == 503
    assert transport.breaker("https://api.example.com/").state is CircuitState.OPEN
    assert any(
        r.levelno >= logging.WARNING and "classify" in r.getMessage() for r in caplog.records
    )


async def test_the_hook_sees_the_status_line_never_the_body(
    binding: Binding, live: LiveServer, clock: FakeClock
) -> None:
    seen: list[bool] = []

    def hook(request: Any, subject: Any) -> None:
        assert isinstance(subject, binding.http.Response)
        seen.append(subject.is_stream_consumed)

    transport = binding.transport(
        binding.inner_http(),
        policy=Policy(breaker=BreakerPolicy(classify=hook), retry=RetryPolicy(attempts=1)),
        clock=clock,
    )
    async with binding.client(transport) as client:
        response = await client.get(f"{live.url}/drip?n=3&interval=0")
    assert response.text == "chunk 0\nchunk 1\nchunk 2\n"
    assert seen == [False]
