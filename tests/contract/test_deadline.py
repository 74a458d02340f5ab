"""``RetryPolicy(deadline=...)`` bounds the whole call (README, "Deadline"):
reading a response discarded for a retry is part of it, and once time is up
nothing more is sent, and nothing more is counted. Checked on every binding,
against the real loopback server and on a ``FakeClock``."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
import tenacity

from resilient_http.testing import FakeClock

from ..bindings import Binding
from ..server import LiveServer

#: A 503 whose body takes about 3.8 s to arrive.
SLOW_503 = "/drip?status=503&n=20&interval=0.2"


async def read_into(response: Any, chunks: list[bytes]) -> None:
    async for chunk in response.aiter_raw():
        chunks.append(chunk)


def deadline_client(binding: Binding, deadline: float) -> Any:
    api = binding.api
    retry = api.RetryPolicy(attempts=3, wait=tenacity.wait_fixed(0.05), deadline=deadline)
    return binding.client(binding.transport(policy=api.Policy(retry=retry)))


async def test_a_slow_body_being_read_for_a_retry_is_cut_at_the_deadline(
    binding: Binding, live: LiveServer
) -> None:
    async with deadline_client(binding, 1.0) as client:
        started = time.monotonic()
        with pytest.raises(binding.api.DeadlineExceeded):
            await client.get(live.url + SLOW_503)
        assert time.monotonic() - started < 1.8
    assert live.state.hits["/drip"] == 1  # no time was left to send another


async def test_a_cut_body_still_shows_its_status_and_what_arrived(
    binding: Binding, live: LiveServer
) -> None:
    async with deadline_client(binding, 0.5) as client:
        started = time.monotonic()
        async with client.stream("GET", live.url + SLOW_503) as response:
            assert response.status_code == 503
            received: list[bytes] = []
            with pytest.raises(binding.api.DeadlineExceeded):
                await read_into(response, received)
            assert b"".join(received).startswith(b"chunk 0\n")
        assert time.monotonic() - started < 1.3


async def test_a_fast_body_stays_readable_when_the_deadline_stops_the_retries(
    binding: Binding, live: LiveServer
) -> None:
    async with deadline_client(binding, 0.3) as client:
        live.state.fail_next = 100
        response = await client.get(f"{live.url}/flaky")
    assert response.status_code == 503
    assert response.text == "sick"


async def test_no_attempt_is_sent_or_counted_once_the_deadline_has_passed(
    binding: Binding, clock: FakeClock
) -> None:
    """A backoff that overslept past the deadline: the call ends with the one
    real 503, counted once (it used to send nothing and count a second failure)."""
    hits = 0

    def handler(request: Any) -> Any:
        nonlocal hits
        hits += 1
        return binding.response(503, text="sick")

    def oversleep(seconds: float) -> None:
        clock.advance(seconds * 3)

    async def oversleep_async(seconds: float) -> None:
        oversleep(seconds)

    api = binding.api
    retry = api.RetryPolicy(attempts=3, wait=tenacity.wait_fixed(0.4), deadline=1.0, budget=None)
    transport = binding.transport(
        binding.mock(handler),
        policy=api.Policy(retry=retry),
        clock=clock,
        sleep=oversleep if binding.sync else oversleep_async,
    )
    async with binding.client(transport) as client:
        response = await client.get("https://api.example.com/")
    assert response.status_code == 503
    assert response.text == "sick"
    assert hits == 1
    assert transport.snapshot()["api.example.com:443"]["consecutive_failures"] == 1


async def test_a_hanging_attempt_is_cut_at_the_deadline_on_a_test_clock(
    binding: Binding, live: LiveServer
) -> None:
    """The cut is the deadline's, whatever the clock: a transport on a
    ``FakeClock`` (which does not move while a socket waits) still reports
    ``DeadlineExceeded``, not the read timeout the cut was made of."""
    api = binding.api
    clock = FakeClock()
    retry = api.RetryPolicy(attempts=1, deadline=0.2)
    transport = binding.transport(policy=api.Policy(retry=retry), clock=clock, sleep=clock.sleep)
    async with binding.client(transport, timeout=5.0) as client:
        started = time.monotonic()
        with pytest.raises(api.DeadlineExceeded):
            await client.get(live.url + "/hang")
        assert time.monotonic() - started < 2.0


async def test_the_requests_own_shorter_timeout_stays_a_timeout(
    binding: Binding, live: LiveServer
) -> None:
    """A read timeout shorter than the time left is the request's own:
    ``ReadTimeout``, not ``DeadlineExceeded``."""
    api = binding.api
    retry = api.RetryPolicy(attempts=1, deadline=5.0)
    transport = binding.transport(policy=api.Policy(retry=retry))
    async with binding.client(transport, timeout=0.2) as client:
        with pytest.raises(binding.http.ReadTimeout) as caught:
            await client.get(live.url + "/hang")
        assert not isinstance(caught.value, api.DeadlineExceeded)


def _one_slot(binding: Binding, deadline: float) -> Any:
    """A transport with a one-call bulkhead that waits up to 5 s for its slot."""
    api = binding.api
    retry = api.RetryPolicy(attempts=1, deadline=deadline)
    return binding.transport(policy=api.Policy(retry=retry, max_concurrency=1, max_wait=5.0))


async def test_a_call_waiting_for_a_bulkhead_slot_ends_at_its_deadline(
    binding: Binding, live: LiveServer
) -> None:
    """The whole call ends by its deadline, its wait for a slot included: it is
    rejected then (``BulkheadFullError``, as when ``max_wait`` runs out), not
    after ``max_wait``."""
    async with binding.client(_one_slot(binding, 0.5), timeout=10) as client:
        async with client.stream("GET", live.url + "/echo"):  # holds the only slot
            started = time.monotonic()
            with pytest.raises(binding.api.BulkheadFullError):
                await client.get(live.url + "/echo")
            assert time.monotonic() - started < 1.5


async def test_a_call_that_waited_for_its_slot_has_the_rest_of_its_deadline(
    binding: Binding, live: LiveServer
) -> None:
    """A call that got its slot after 0.5 s of a 1 s deadline is cut 1 s after
    it began waiting, not 1 s after it got the slot."""
    async with binding.client(_one_slot(binding, 1.0), timeout=10) as client:
        holding = client.stream("GET", live.url + "/echo")
        await holding.__aenter__()

        async def release() -> None:
            await anyio.sleep(0.5)
            await holding.__aexit__(None, None, None)

        started = time.monotonic()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(release)
            with pytest.raises(binding.api.DeadlineExceeded):
                await client.get(live.url + "/hang")
        assert 0.8 < time.monotonic() - started < 1.4


async def test_a_slot_that_comes_with_no_time_left_sends_nothing(
    binding: Binding, live: LiveServer
) -> None:
    """The deadline passed while the call waited for its slot (on the
    transport's clock): the call ends with ``DeadlineExceeded``, nothing sent,
    nothing counted."""
    api = binding.api
    clock = FakeClock()
    retry = api.RetryPolicy(attempts=1, deadline=1.0)
    policy = api.Policy(retry=retry, max_concurrency=1, max_wait=5.0)
    transport = binding.transport(policy=policy, clock=clock, sleep=clock.sleep)
    sent = live.state.hits.get("/hang", 0)
    async with binding.client(transport, timeout=10) as client:
        holding = client.stream("GET", live.url + "/echo")
        await holding.__aenter__()

        async def release() -> None:
            await anyio.sleep(0.2)
            clock.advance(2.0)  # past the deadline, while the call waits
            await holding.__aexit__(None, None, None)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(release)
            with pytest.raises(api.DeadlineExceeded):
                await client.get(live.url + "/hang")
    assert live.state.hits.get("/hang", 0) == sent
    (breaker,) = transport.snapshot().values()
    assert breaker["state"] == "closed"
    assert breaker["consecutive_failures"] == 0
