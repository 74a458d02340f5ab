"""The async deadline cut (README, "Deadline"), on asyncio and trio. On
asyncio it is a cancellation of the caller's task that the transport takes
back, with one timer per event loop for every attempt; these tests attack
that: the caller's own cancellation, many deadlines at once, and the timer
going off after thousands of attempts that ended in time."""

from __future__ import annotations

import asyncio
import threading
import time

import anyio
import anyio.lowlevel
import httpx
import pytest

from resilient_http import DeadlineExceeded, Policy, ResilientTransport, RetryPolicy
from resilient_http._async._transport import RETRY_EXTENSION

from .server import LiveServer


def transport(deadline: float) -> ResilientTransport:
    return ResilientTransport(policy=Policy(retry=RetryPolicy(attempts=1, deadline=deadline)))


async def test_the_callers_own_cancellation_stays_a_cancellation(live: LiveServer) -> None:
    async with httpx.AsyncClient(transport=transport(5.0), timeout=10) as client:
        with anyio.move_on_after(0.2) as scope:
            await client.get(live.url + "/hang")
        assert scope.cancelled_caught
        await anyio.lowlevel.checkpoint()  # the task is not left cancelled
        response = await client.get(live.url + "/echo")
        assert response.status_code == 200


async def test_a_deadline_due_with_the_callers_cancellation_leaves_no_cancellation_behind(
    live: LiveServer,
) -> None:
    """Both due in the same turn of the loop: one of them ends the call (the
    caller's scope catches its own cancellation, or the deadline raises) and
    the task goes on uncancelled."""
    async with httpx.AsyncClient(transport=transport(0.2), timeout=10) as client:
        deadline_first = False
        with anyio.move_on_after(0.2) as scope:
            try:
                await client.get(live.url + "/hang")
            except DeadlineExceeded:
                deadline_first = True
        assert scope.cancelled_caught != deadline_first
        await anyio.lowlevel.checkpoint()
        assert (await client.get(live.url + "/echo")).status_code == 200


async def test_concurrent_deadlines_each_cut_at_their_own_time(live: LiveServer) -> None:
    """A later deadline armed first, then an earlier one: each call is cut at
    its own deadline (the shared timer is re-armed both ways)."""
    ended: dict[str, float] = {}
    async with httpx.AsyncClient(transport=transport(1.0), timeout=10) as client:
        started = time.monotonic()

        async def call(name: str, deadline: float | None) -> None:
            extensions = (
                {}
                if deadline is None
                else {RETRY_EXTENSION: RetryPolicy(attempts=1, deadline=deadline)}
            )
            with pytest.raises(DeadlineExceeded):
                await client.get(live.url + "/hang", extensions=extensions)
            ended[name] = time.monotonic() - started

        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "long", None)
            await anyio.sleep(0.05)
            tg.start_soon(call, "short", 0.3)
    assert 0.25 < ended["short"] < 0.8
    assert 0.95 < ended["long"] < 1.6


async def test_attempts_that_end_in_time_leave_the_next_cut_on_time(live: LiveServer) -> None:
    inner = httpx.MockTransport(lambda request: httpx.Response(200, text="ok"))
    fast = ResilientTransport(inner, policy=Policy(retry=RetryPolicy(attempts=1, deadline=0.3)))
    async with httpx.AsyncClient(transport=fast) as quick:
        for _ in range(2000):
            assert (await quick.get("http://fast.example/")).status_code == 200
    async with httpx.AsyncClient(transport=transport(0.3), timeout=10) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            await client.get(live.url + "/hang")
        assert 0.25 < time.monotonic() - started < 0.9
        assert (await client.get(live.url + "/echo")).status_code == 200


class Swallowing(httpx.AsyncBaseTransport):
    """An inner transport that catches the cancellation meant to cut it and
    answers anyway (bad manners, but a transport must survive it)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return httpx.Response(200, text="answered anyway")
        return httpx.Response(200, text="on time")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_cut_the_inner_transport_swallows_leaves_the_task_uncancelled() -> None:
    retry = RetryPolicy(attempts=1, deadline=0.1)
    cut = ResilientTransport(Swallowing(), policy=Policy(retry=retry))
    async with httpx.AsyncClient(transport=cut) as client:
        response = await client.get("https://api.example.com/")
        assert response.text == "answered anyway"
        task = asyncio.current_task()
        assert task is not None
        # (Task.cancelling is Python 3.11+; mypy checks against 3.10's stubs)
        assert task.cancelling() == 0  # type: ignore[attr-defined,unused-ignore]
        await asyncio.sleep(0)  # no cancellation left pending


def test_each_event_loop_cuts_its_own_attempts(live: LiveServer) -> None:
    """Two threads, each with its own event loop and its own deadlines: every
    call is cut at its own deadline (the loops' timers do not mix)."""
    took: dict[str, float] = {}

    def run(name: str, deadline: float) -> None:
        async def call() -> None:
            started = time.monotonic()
            async with httpx.AsyncClient(transport=transport(deadline), timeout=10) as client:
                with pytest.raises(DeadlineExceeded):
                    await client.get(live.url + "/hang")
            took[name] = time.monotonic() - started

        asyncio.run(call())

    threads = [
        threading.Thread(target=run, args=("short", 0.2)),
        threading.Thread(target=run, args=("long", 0.7)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert 0.15 < took["short"] < 0.6
    assert 0.65 < took["long"] < 1.3


class Sleeping(httpx.AsyncBaseTransport):
    """Answers after ``seconds`` of the event loop's own time."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(self.seconds)
        return httpx.Response(200, text="late")


def test_the_cut_keeps_to_a_clock_set_on_the_loop_itself() -> None:
    """A test helper's fake clock set on the loop instance (as time-travel
    plugins do), even after the loop's first attempt: the cut is timed on the
    loop's clock, the one its timers run on."""
    retry = RetryPolicy(attempts=1, deadline=0.1)

    async def main() -> None:
        cut = ResilientTransport(Sleeping(0.5), policy=Policy(retry=retry))
        async with httpx.AsyncClient(transport=cut) as client:
            with pytest.raises(DeadlineExceeded):  # the loop's own clock
                await client.get("https://api.example.com/")
            loop = asyncio.get_running_loop()
            loop.time = lambda: time.monotonic() - 1000.0  # type: ignore[method-assign]
            started = time.monotonic()
            with pytest.raises(DeadlineExceeded):
                await client.get("https://api.example.com/")
            assert time.monotonic() - started < 0.4

    asyncio.run(main())


def test_an_event_loop_that_cut_attempts_is_freed_when_it_ends() -> None:
    """Each ``asyncio.run`` is a new event loop; the table of a loop's cuts
    must not keep it (and what it holds) alive once the loop is gone. At most
    the last loop used may linger, until another one cuts an attempt."""
    import gc
    import weakref

    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def call() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        answered = ResilientTransport(
            httpx.MockTransport(lambda request: httpx.Response(200)),
            policy=Policy(retry=RetryPolicy(attempts=1, deadline=5.0)),
        )
        async with httpx.AsyncClient(transport=answered) as client:
            assert (await client.get("https://api.example.com/")).status_code == 200

    for _ in range(5):
        asyncio.run(call())
    gc.collect()
    assert sum(loop() is not None for loop in loops) <= 1
