"""Listener events, their order, sync and async listeners, raising
listeners, and the ``resilient_http`` log lines (never a secret).

The binding-independent tests live in tests/contract/test_listeners.py; what
stays here is async only: async listeners, and calls cancelled mid-flight."""

from __future__ import annotations

import dataclasses
import logging
import pickle
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import anyio.lowlevel
import httpx
import pytest
import tenacity

from resilient_http import (
    AttemptFinished,
    BreakerEvicted,
    BreakerPolicy,
    CallRejected,
    CircuitOpenError,
    CircuitState,
    Event,
    FallbackServed,
    Hedged,
    Policy,
    ResilientClient,
    ResilientTransport,
    RetryPolicy,
    RetryScheduled,
    StateChanged,
)
from resilient_http._events import Emitter, passes_attempts_to_hook
from resilient_http.testing import FakeClock

from .server import LiveServer

HOST = "api.example.com:443"
#: Userinfo, a query string and header values: none may reach an event or a log line.
SECRET_URL = "https://alice:hunter2@api.example.com/v1/items?token=tok-9f8e7d&page=2"
SECRETS = ("alice", "hunter2", "tok-9f8e7d", "page=2", "sk-live-51Habc", "key-0c0ffee", "/v1/")


class Upstream:
    """A MockTransport handler whose status the test sets."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return httpx.Response(self.status, json={"status": self.status})


def make_transport(
    upstream: Upstream,
    clock: FakeClock,
    listeners: list[object],
    *,
    attempts: int = 1,
) -> ResilientTransport:
    transport = ResilientTransport(
        httpx.MockTransport(upstream),
        policy=Policy(
            breaker=BreakerPolicy(failure_threshold=2, recovery_timeout=10.0),
            retry=RetryPolicy(attempts=attempts, wait=tenacity.wait_none()),
        ),
        listeners=listeners,  # type: ignore[arg-type]
        clock=clock,
        sleep=clock.sleep,
    )

    @transport.fallback("api.example.com")
    def unknown(request: httpx.Request, error: CircuitOpenError) -> httpx.Response:
        return httpx.Response(200, json={"cached": True})

    return transport


async def test_sync_and_async_listeners_both_receive_every_event(clock: FakeClock) -> None:
    sync_seen: list[Event] = []
    async_seen: list[Event] = []

    async def async_listener(event: Event) -> None:
        await anyio.lowlevel.checkpoint()  # runs on the caller's event loop
        async_seen.append(event)

    upstream = Upstream(503)
    transport = make_transport(upstream, clock, [sync_seen.append, async_listener])
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://api.example.com/")
        # An async listener has run by the time the call returns.
        assert async_seen == sync_seen == [AttemptFinished(HOST, "GET", "failure", 0.0, 503, None)]
        await client.get("https://api.example.com/")
        await client.get("https://api.example.com/")

    assert async_seen == sync_seen
    assert [type(e) for e in sync_seen] == [
        AttemptFinished,
        AttemptFinished,
        StateChanged,
        CallRejected,
        FallbackServed,
    ]


async def test_async_listener_hears_a_streamed_success_before_the_call_returns(
    live: LiveServer,
) -> None:
    # On a real server, a success is judged when its body ends, after the
    # transport has returned the response: the async listener must still run.
    seen: list[Event] = []

    async def listener(event: Event) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(event)

    async with ResilientClient(listeners=[listener]) as client:
        response = await client.get(f"{live.url}/status/200")
        assert response.status_code == 200
        assert [(type(e), getattr(e, "outcome", None)) for e in seen] == [
            (AttemptFinished, "success")
        ]


async def test_a_raising_listener_is_logged_and_never_breaks_the_request(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    async def broken_async(event: Event) -> None:
        raise ValueError("async listener bug")

    upstream = Upstream(200)
    transport = make_transport(upstream, clock, [broken, broken_async, seen.append])
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(SECRET_URL)
        assert response.status_code == 200
        assert response.json() == {"status": 200}

    assert seen == [AttemptFinished(HOST, "GET", "success", 0.0, 200, None)]
    errors = [
        r for r in caplog.records if r.name == "resilient_http" and r.levelno >= logging.ERROR
    ]
    assert len(errors) == 2
    raised = {type(r.exc_info[1]) for r in errors if r.exc_info is not None}
    assert raised == {RuntimeError, ValueError}
    for record in errors:
        assert all(secret not in record.getMessage() for secret in SECRETS)


# -- whose listeners a call waits for ------------------------------------------------


class Gate:
    """An async listener that blocks on the events it is told to, until opened."""

    def __init__(self, blocks: type[Event], host: str | None = None) -> None:
        self.blocks, self.host = blocks, host
        self.entered = anyio.Event()
        self.opened = anyio.Event()
        self.heard: list[Event] = []

    async def __call__(self, event: Event) -> None:
        if isinstance(event, self.blocks) and self.host in (None, event.host):
            self.entered.set()
            await self.opened.wait()
        self.heard.append(event)


async def test_a_call_never_waits_for_another_calls_listeners(clock: FakeClock) -> None:
    """A call to a slow host is asleep in backoff with listener calls owed (one
    of them blocks): a call to another host meanwhile runs only its own, and
    returns at once; the sleeping call runs its own when it ends."""
    gate = Gate(AttemptFinished, host="slow.example.com:443")
    asleep, wake = anyio.Event(), anyio.Event()

    async def sleep(seconds: float) -> None:
        asleep.set()
        await wake.wait()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503 if request.url.host == "slow.example.com" else 200)

    transport = ResilientTransport(
        httpx.MockTransport(handler),
        policy=Policy(retry=RetryPolicy(attempts=2, wait=tenacity.wait_fixed(1), budget=None)),
        listeners=[gate],
        clock=clock,
        sleep=sleep,
    )
    async with httpx.AsyncClient(transport=transport) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.get, "https://slow.example.com/")
            await asleep.wait()
            with anyio.fail_after(2):  # its own listener calls only
                response = await client.get("https://fast.example.com/")
            assert response.status_code == 200
            assert not gate.entered.is_set()
            assert [e.host for e in gate.heard] == ["fast.example.com:443"]
            wake.set()
            await gate.entered.wait()  # the slow call runs its own as it ends
            gate.opened.set()
    assert [e.host for e in gate.heard].count("slow.example.com:443") == 3  # 2 attempts, 1 retry


async def test_events_from_outside_a_call_are_charged_to_no_call(clock: FakeClock) -> None:
    """``force_open()`` from your own code: its StateChanged reaches the async
    listener in the background, never inside a later, unrelated call."""
    gate = Gate(StateChanged)
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)),
        listeners=[gate],
        clock=clock,
        sleep=clock.sleep,
    )
    async with httpx.AsyncClient(transport=transport) as client:
        transport.breaker("https://held.example.com/").force_open()
        with anyio.fail_after(2):
            await gate.entered.wait()  # it runs on its own
            response = await client.get("https://other.example.com/")
        assert response.status_code == 200
        gate.opened.set()
        with anyio.fail_after(2):
            while not any(isinstance(e, StateChanged) for e in gate.heard):
                await anyio.sleep(0.001)


async def cancel_once(backend: str, call: Coroutine[Any, Any, object], ready: anyio.Event) -> None:
    """Run ``call``, and cancel it once ``ready`` is set: on asyncio with the
    one-shot ``Task.cancel`` (as ``asyncio.timeout`` does, the harder case), on
    trio with a cancel scope. It must end within 1.5 s."""
    if backend == "asyncio":
        import asyncio

        task = asyncio.ensure_future(call)
        await ready.wait()
        task.cancel()
        with anyio.fail_after(1.5), pytest.raises(asyncio.CancelledError):
            await task
        return

    async def run() -> None:
        await call

    with anyio.fail_after(1.5), anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await ready.wait()
            scope.cancel()


async def test_a_cancelled_call_does_not_wait_for_its_listeners(anyio_backend_name: str) -> None:
    """Cancelled in backoff (on asyncio with the one-shot ``Task.cancel``, as
    ``asyncio.timeout`` does) while its async listener calls are owed and one
    of them would block: the call ends at once, and they finish in the
    background instead of holding the cancelled caller."""
    gate = Gate(RetryScheduled)
    sleeping = anyio.Event()

    async def sleep(seconds: float) -> None:
        sleeping.set()
        await anyio.sleep(seconds)

    statuses = iter([503, 200])
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(next(statuses))),
        policy=Policy(retry=RetryPolicy(attempts=2, wait=tenacity.wait_fixed(30), budget=None)),
        listeners=[gate],
        sleep=sleep,
    )
    async with httpx.AsyncClient(transport=transport) as client:
        started = anyio.current_time()
        await cancel_once(anyio_backend_name, client.get("https://api.example.com/"), sleeping)
        with anyio.fail_after(2):
            await gate.entered.wait()  # running detached, blocked on the gate
        assert anyio.current_time() - started < 1.5
        gate.opened.set()
        with anyio.fail_after(2):
            while not any(isinstance(e, RetryScheduled) for e in gate.heard):
                await anyio.sleep(0.001)


class _StalledBody(httpx.AsyncByteStream):
    def __init__(self) -> None:
        self.started = anyio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"first;"
        self.started.set()
        await anyio.sleep(30)
        yield b"never"


async def test_a_reader_cancelled_mid_body_does_not_wait_for_listeners(
    anyio_backend_name: str,
) -> None:
    """The body's verdict (ignored) sets off an async listener that would block:
    the cancelled reader goes on at once; the listener runs in the background."""
    gate = Gate(AttemptFinished)
    body = _StalledBody()
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200, stream=body)),
        listeners=[gate],
    )

    async def read(client: httpx.AsyncClient) -> None:
        async with client.stream("GET", "https://api.example.com/") as response:
            await response.aread()

    async with httpx.AsyncClient(transport=transport) as client:
        started = anyio.current_time()
        await cancel_once(anyio_backend_name, read(client), body.started)
        assert anyio.current_time() - started < 1.5
        with anyio.fail_after(2):
            await gate.entered.wait()
        gate.opened.set()
        with anyio.fail_after(2):
            while not gate.heard:
                await anyio.sleep(0.001)
    assert isinstance(gate.heard[0], AttemptFinished)
    assert gate.heard[0].outcome == "ignored"


# -- the events themselves -------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        AttemptFinished("a:443", "GET", "failure", 0.25, 503, None),
        StateChanged("a:443", CircuitState.CLOSED, CircuitState.OPEN, 30.0),
        RetryScheduled("a:443", "GET", 1, 0.5, "status 503"),
        CallRejected("a:443", "GET", "circuit_open", 30.0),
        FallbackServed("a:443", "GET", "circuit_open", "fallback"),
        Hedged("a:443", "GET", 1, 0.05, 1),
        BreakerEvicted("a:443"),
    ],
    ids=lambda event: type(event).__name__,
)
def test_events_are_frozen_dataclasses_built_by_field_name_or_position(event: Event) -> None:
    fields = {field.name: getattr(event, field.name) for field in dataclasses.fields(event)}
    assert next(iter(fields)) == "host"
    by_name = type(event)(**fields)
    assert by_name == event
    assert hash(by_name) == hash(event)
    assert type(event)(*fields.values()) == event
    assert repr(event) == repr(by_name)
    assert pickle.loads(pickle.dumps(event)) == event
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.host = "b:443"  # type: ignore[misc]
    assert dataclasses.replace(event, host="b:443").host == "b:443"
    with pytest.raises(TypeError):
        type(event)()  # type: ignore[call-arg]


async def test_what_a_plain_listener_returns_to_await_runs_in_the_background() -> None:
    """Only ``async def`` listeners (or objects whose ``__call__`` is one) are
    waited for by the call; an awaitable a plain function returns still runs,
    after the call has returned."""
    ran = anyio.Event()

    async def later() -> None:
        ran.set()

    def listener(event: Event) -> Coroutine[Any, Any, None] | None:
        return later() if isinstance(event, AttemptFinished) else None

    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)), listeners=[listener]
    )
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get("https://api.example.com/")).status_code == 200
        with anyio.fail_after(2):
            await ran.wait()


async def test_a_listener_object_is_called_as_calling_it_would() -> None:
    """Through its class's ``__call__``, as ``listener(event)`` does: an
    instance attribute of that name is not what Python calls, nor do we."""

    class Recorder:
        def __init__(self) -> None:
            self.heard: list[Event] = []
            self.wrong: list[Event] = []
            setattr(self, "__call__", self.wrong.append)  # noqa: B010 (ignored by listener(event) too)

        def __call__(self, event: Event) -> None:
            self.heard.append(event)

    recorder = Recorder()
    inner = httpx.MockTransport(lambda request: httpx.Response(200))
    transport = ResilientTransport(inner, listeners=[recorder])
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://api.example.com/")
    assert [type(event) for event in recorder.heard] == [AttemptFinished]
    assert recorder.wrong == []


async def test_a_listener_method_patched_before_the_client_is_built_is_the_one_called(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """README, "Listeners": the method is looked up on the class once, when the
    transport is built."""

    class Recorder:
        def __call__(self, event: Event) -> None:
            raise AssertionError("the method before the patch")

    heard: list[Event] = []
    monkeypatch.setattr(Recorder, "__call__", lambda self, event: heard.append(event))
    inner = httpx.MockTransport(lambda request: httpx.Response(200))
    transport = ResilientTransport(inner, listeners=[Recorder()])
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://api.example.com/")
    assert [type(event) for event in heard] == [AttemptFinished]


# -- listeners that take an attempt's fields -------------------------------------------


class _Fields:
    """A listener of ours in shape: a marked ``__call__`` and the fields hook."""

    def __init__(self) -> None:
        self.got: list[object] = []

    @passes_attempts_to_hook
    def __call__(self, event: Event) -> None:
        self.got.append(event)

    def _resilient_http_attempt_finished(self, *fields: object) -> None:
        self.got.append(fields)


class _FieldsOverridden(_Fields):
    def _resilient_http_attempt_finished(self, *fields: object) -> None:
        self.got.append(("overridden", *fields))


class _OwnCall(_Fields):
    def __call__(self, event: Event) -> None:  # (not marked: events)
        self.got.append(event)


class _HookOnTheInstance(_Fields):
    def __init__(self) -> None:
        super().__init__()
        self._resilient_http_attempt_finished = lambda *fields: self.got.append(  # type: ignore[method-assign]
            ("mine", *fields)
        )


class _AsyncFields:
    def __init__(self) -> None:
        self.got: list[object] = []

    @passes_attempts_to_hook
    def __call__(self, event: Event) -> None:
        self.got.append(event)

    async def _resilient_http_attempt_finished(self, *fields: object) -> None:
        raise AssertionError("never called: it would never be awaited")


@pytest.mark.parametrize(
    ("listener", "expected"),
    [
        (_Fields, ("a:1", "GET", "success", 0.0, 200, None)),
        (_FieldsOverridden, ("overridden", "a:1", "GET", "success", 0.0, 200, None)),
        (_AsyncFields, AttemptFinished("a:1", "GET", "success", 0.0, 200, None)),
        (_OwnCall, AttemptFinished("a:1", "GET", "success", 0.0, 200, None)),
        (_HookOnTheInstance, ("mine", "a:1", "GET", "success", 0.0, 200, None)),
    ],
    ids=[
        "fields",
        "a subclass's own hook, as __call__ would reach it",
        "an async hook: events",
        "a subclass's own __call__: events",
        "a hook set on the instance, as __call__ would reach it",
    ],
)
def test_which_listeners_take_an_attempts_fields(listener: type[Any], expected: object) -> None:

    taking = listener()
    emitter = Emitter([taking])
    if emitter.attempt_hooks is None:
        emitter.emit(AttemptFinished("a:1", "GET", "success", 0.0, 200, None))
    else:
        emitter.attempt_finished("a:1", "GET", "success", 0.0, 200, None)
    assert taking.got == [expected]
    assert Emitter([_Fields(), lambda event: None]).attempt_hooks is None  # all, or none


# -- what a black-box review of the README found -----------------------------------------


async def test_a_plain_functions_awaitable_runs_in_the_background_beside_an_async_listener(
    clock: FakeClock,
) -> None:
    """Only ``async def`` listeners are awaited by the call; what a plain
    function returns runs in the background, even when an ``async def``
    listener is there too."""
    release = anyio.Event()
    finished: list[bool] = []

    async def slow() -> None:
        await release.wait()
        finished.append(True)

    def plain(event: Event) -> Coroutine[Any, Any, None]:
        return slow()

    async def awaited(event: Event) -> None:
        pass

    transport = make_transport(Upstream(200), clock, [plain, awaited])
    async with httpx.AsyncClient(transport=transport) as client:
        with anyio.fail_after(5):  # (before the fix: waits for release, forever)
            assert (await client.get(SECRET_URL)).status_code == 200
    assert finished == []
    release.set()
    await anyio.wait_all_tasks_blocked()
    assert finished == [True]


class Boom(BaseException):
    """Not an ``Exception``: it goes on up through the listener's caller."""


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_listener_raising_a_base_exception_leaves_the_breaker_whole(
    clock: FakeClock, kind: str
) -> None:
    """The exception reaches the caller, and the attempt still counts: a
    half-open probe gives its slot back (before, the circuit stayed half-open
    with its probe slot taken, rejecting every later call)."""
    upstream = Upstream(503)

    def on_probe(event: Event) -> None:
        if isinstance(event, AttemptFinished) and upstream.status == 200:
            upstream.status = 201  # once
            raise Boom

    async def on_probe_async(event: Event) -> None:
        on_probe(event)

    transport = make_transport(upstream, clock, [on_probe if kind == "sync" else on_probe_async])
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(2):
            assert (await client.get(SECRET_URL)).status_code == 503
        assert transport.snapshot()[HOST]["state"] == "open"
        clock.advance(10.0)
        upstream.status = 200
        with pytest.raises(Boom):
            await client.get(SECRET_URL)  # the probe, a success
        assert transport.snapshot()[HOST]["state"] == "closed"
        assert (await client.get(SECRET_URL)).status_code == 201


async def test_a_listener_object_with_a_static_or_class_call_method_gets_events(
    clock: FakeClock,
) -> None:
    got: list[str] = []

    def record(event: Event) -> None:
        got.append(f"static {type(event).__name__}")

    class Static:
        __call__ = staticmethod(record)

    class Classy:
        @classmethod
        def __call__(cls, event: Event) -> None:
            got.append(f"{cls.__name__} {type(event).__name__}")

    transport = make_transport(Upstream(200), clock, [Static(), Classy()])
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(SECRET_URL)).status_code == 200
    assert got == ["static AttemptFinished", "Classy AttemptFinished"]


async def test_the_listener_call_running_when_its_call_is_cancelled_finishes_in_the_background(
    clock: FakeClock,
) -> None:
    """A cancelled call ends at once; its listener calls, the one running at
    that moment included, finish in the background (README, "Listeners")."""
    running = anyio.Event()
    release = anyio.Event()
    finished: list[str] = []

    async def listener(event: Event) -> None:
        if isinstance(event, AttemptFinished):
            running.set()
            await release.wait()
            finished.append(event.outcome)

    transport = make_transport(Upstream(200), clock, [listener])
    async with httpx.AsyncClient(transport=transport) as client:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tasks:

                async def call() -> None:
                    await client.get(SECRET_URL)

                tasks.start_soon(call)
                await running.wait()
                tasks.cancel_scope.cancel()  # the call ends now, its listener still waiting
        assert finished == []
        release.set()
        await anyio.wait_all_tasks_blocked()
        assert finished == ["success"]
