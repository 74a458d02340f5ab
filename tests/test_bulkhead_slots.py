"""The async bulkhead's slots (``_io.Semaphore``), on asyncio and trio: a free
slot is taken at once, a released one goes to the first waiter, and a waiter
that times out or is cancelled never takes a slot with it; and the sync
binding's slots. (The contract tests and ``tests/test_threads.py`` cover both
through the transport.)"""

from __future__ import annotations

import anyio

from resilient_http._async import _io
from resilient_http._sync import _io as _sync_io


async def test_free_slots_are_taken_at_once_then_the_next_call_waits_its_max_wait() -> None:
    slots = _io.Semaphore(2)
    assert await _io.acquire(slots, 0.0)
    assert _io.try_acquire(slots)
    assert not _io.try_acquire(slots)
    with anyio.fail_after(5):
        assert not await _io.acquire(slots, 0.01)  # timed out: no slot
    assert slots.free == 0
    assert not slots.waiters
    slots.release()
    assert slots.free == 1


async def test_a_released_slot_goes_to_the_waiters_in_the_order_they_came() -> None:
    slots = _io.Semaphore(1)
    assert _io.try_acquire(slots)
    order: list[int] = []

    async def wait(n: int) -> None:
        assert await _io.acquire(slots, 5.0)
        order.append(n)

    async with anyio.create_task_group() as tg:
        for n in range(3):
            tg.start_soon(wait, n)
            await anyio.wait_all_tasks_blocked()
        assert not _io.try_acquire(slots)  # nobody jumps the queue
        for _ in range(3):
            slots.release()
            await anyio.wait_all_tasks_blocked()
    assert order == [0, 1, 2]
    assert slots.free == 0  # the last waiter still holds its slot
    slots.release()
    assert slots.free == 1


async def test_a_waiter_cancelled_after_it_was_handed_a_slot_passes_it_on() -> None:
    slots = _io.Semaphore(1)
    assert _io.try_acquire(slots)
    got: list[bool] = []

    async def wait() -> None:
        got.append(await _io.acquire(slots, 5.0))

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()  # the waiter is being cancelled...
        slots.release()  # ...when a slot is handed to it, before it runs again
    assert got == []
    assert slots.free == 1
    assert not slots.waiters


async def test_a_waiter_cancelled_in_the_queue_leaves_it() -> None:
    slots = _io.Semaphore(1)
    assert _io.try_acquire(slots)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_io.acquire, slots, 5.0)
        await anyio.wait_all_tasks_blocked()
        assert len(slots.waiters) == 1
        tg.cancel_scope.cancel()
    assert not slots.waiters
    slots.release()
    assert slots.free == 1


def test_sync_slots_are_taken_at_once_then_a_thread_waits_its_max_wait() -> None:
    slots = _sync_io.Semaphore(1)
    assert _sync_io.acquire(slots, 0.0)
    assert not _sync_io.try_acquire(slots)
    assert not _sync_io.acquire(slots, 0.01)  # timed out: no slot
    slots.release()
    assert slots.free == 1
