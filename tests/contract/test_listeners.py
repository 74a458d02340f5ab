"""Listener events, their order, and the ``resilient_http`` log lines (never a
secret), checked on every binding with sync listeners."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import tenacity

from resilient_http import (
    AttemptFinished,
    CallRejected,
    CircuitState,
    Event,
    FallbackServed,
    RetryScheduled,
    StateChanged,
)
from resilient_http.testing import FakeClock

from ..bindings import Binding

HOST = "api.example.com:443"
#: Userinfo, a query string and header values: none may reach an event or a log line.
SECRET_URL = "https://alice:hunter2@api.example.com/v1/items?token=tok-9f8e7d&page=2"
SECRET_HEADERS = {"Authorization": "Bearer sk-live-51Habc", "X-Api-Key": "key-0c0ffee"}
SECRETS = ("alice", "hunter2", "tok-9f8e7d", "page=2", "sk-live-51Habc", "key-0c0ffee", "/v1/")

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


class Upstream:
    """A MockTransport handler whose status the test sets."""

    def __init__(self, binding: Binding, status: int = 200) -> None:
        self.binding = binding
        self.status = status
        self.calls = 0

    def __call__(self, request: Any) -> Any:
        self.calls += 1
        return self.binding.response(self.status, json={"status": self.status})


def make_transport(
    binding: Binding,
    upstream: Upstream,
    clock: FakeClock,
    listeners: list[Any],
    *,
    attempts: int = 1,
) -> Any:
    api = binding.api
    transport = binding.transport(
        binding.mock(upstream),
        policy=api.Policy(
            breaker=api.BreakerPolicy(failure_threshold=2, recovery_timeout=10.0),
            retry=api.RetryPolicy(attempts=attempts, wait=tenacity.wait_none()),
        ),
        listeners=listeners,
        clock=clock,
        sleep=clock.sleep,
    )

    def unknown(request: Any, error: Any) -> Any:
        return binding.response(200, json={"cached": True})

    transport.fallback("api.example.com", unknown)

    return transport


async def test_full_cycle_emits_events_in_causal_order(
    binding: Binding, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="resilient_http")
    events: list[Event] = []
    upstream = Upstream(binding, 503)
    transport = make_transport(binding, upstream, clock, [events.append])
    async with binding.client(transport, headers=SECRET_HEADERS) as client:
        # closed: two failures open the circuit
        assert (await client.get(SECRET_URL)).status_code == 503
        assert (await client.get(SECRET_URL)).status_code == 503
        # open: rejected, answered by the fallback, upstream untouched
        clock.advance(4)
        rejected = await client.get(SECRET_URL)
        assert rejected.json() == {"cached": True}
        assert upstream.calls == 2
        # half-open after the recovery timeout: one probe succeeds and closes it
        clock.advance(6)
        upstream.status = 200
        assert (await client.get(SECRET_URL)).status_code == 200

    assert events == [
        AttemptFinished(HOST, "GET", "failure", 0.0, 503, None),
        AttemptFinished(HOST, "GET", "failure", 0.0, 503, None),
        StateChanged(HOST, CLOSED, OPEN, 10.0),
        CallRejected(HOST, "GET", "circuit_open", 6.0),
        FallbackServed(HOST, "GET", "circuit_open", "fallback"),
        StateChanged(HOST, OPEN, HALF_OPEN, 0.0),
        AttemptFinished(HOST, "GET", "success", 0.0, 200, None),
        StateChanged(HOST, HALF_OPEN, CLOSED, 0.0),
    ]
    transitions = [
        (r.levelno, r.getMessage()) for r in caplog.records if r.name == "resilient_http"
    ]
    assert transitions == [
        (logging.WARNING, f"circuit for {HOST} opened (was closed); next probe in 10.000s"),
        (logging.INFO, f"circuit for {HOST} half-open: probing"),
        (logging.INFO, f"circuit for {HOST} closed (was half_open)"),
    ]
    for text in [repr(e) for e in events] + [m for _, m in transitions]:
        for secret in SECRETS:
            assert secret not in text


async def test_retries_are_events_and_debug_lines_without_secrets(
    binding: Binding, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="resilient_http")
    events: list[Event] = []
    statuses = iter([503, 502, 200])

    def handler(request: Any) -> Any:
        return binding.response(next(statuses))

    api = binding.api
    transport = binding.transport(
        binding.mock(handler),
        policy=api.Policy(retry=api.RetryPolicy(attempts=3, wait=tenacity.wait_fixed(0.25))),
        listeners=[events.append],
        clock=clock,
        sleep=clock.sleep,
    )
    async with binding.client(transport, headers=SECRET_HEADERS) as client:
        assert (await client.get(SECRET_URL)).status_code == 200

    assert events == [
        AttemptFinished(HOST, "GET", "failure", 0.0, 503, None),
        RetryScheduled(HOST, "GET", 1, 0.25, "status 503"),
        AttemptFinished(HOST, "GET", "failure", 0.0, 502, None),
        RetryScheduled(HOST, "GET", 2, 0.25, "status 502"),
        AttemptFinished(HOST, "GET", "success", 0.0, 200, None),
    ]
    debug = [
        r.getMessage()
        for r in caplog.records
        if r.name == "resilient_http" and r.levelno == logging.DEBUG
    ]
    assert debug == [
        f"retrying GET on {HOST} (attempt 1 failed: status 503) in 0.250s",
        f"retrying GET on {HOST} (attempt 2 failed: status 502) in 0.250s",
    ]
    for record in caplog.records:
        assert all(secret not in record.getMessage() for secret in SECRETS)


async def test_resilient_client_passes_listeners_through(binding: Binding) -> None:
    seen: list[Event] = []
    async with binding.resilient_client(
        transport=binding.mock(Upstream(binding, 200)), listeners=[seen.append]
    ) as client:
        await client.get("https://api.example.com/")
    assert len(seen) == 1
    event = seen[0]
    assert isinstance(event, AttemptFinished)
    assert (event.host, event.outcome, event.status_code) == (HOST, "success", 200)


async def test_a_self_tripped_circuit_that_never_recovers_is_not_logged_as_forced(
    binding: Binding, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="resilient_http")
    api = binding.api
    transport = binding.transport(
        binding.mock(lambda request: binding.response(503)),
        policy=api.Policy(
            breaker=api.BreakerPolicy(failure_threshold=1, recovery_timeout=float("inf")),
            retry=api.RetryPolicy(attempts=1),
        ),
        clock=clock,
    )
    async with binding.client(transport) as client:
        await client.get("https://api.example.com/")
        transport.breaker("https://forced.example.com/").force_open()
    lines = [r.getMessage() for r in caplog.records if r.name == "resilient_http"]
    assert lines == [
        "circuit for api.example.com:443 opened (was closed) until reset",
        "circuit for forced.example.com:443 held open by hand (was closed)",
    ]
