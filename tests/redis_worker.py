"""A fleet on one machine, for the Redis store tests.

- :class:`RedisServer`: a real ``redis-server`` on 127.0.0.1 and a free port,
  without persistence; ``stop()`` and ``start()`` again on the same port.
- :func:`start_upstream`: the upstream every worker calls, a uvicorn server in
  a thread of the test process (``/ok`` 200, ``/fail`` 503, ``/gate`` 200 once
  the test opens the gate, ``/hang`` never answers); it counts hits per path.
- :class:`Worker`: one worker *process* (``python -m tests.redis_worker``) with
  its own event loop, ``RedisStateStore`` and ``ResilientClient``, driven over
  stdin/stdout with JSON lines. Commands run concurrently in the worker; each
  reply carries the command's id.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import random
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx  # noqa: F401  (imported before the worker's event loop starts)
from redis.asyncio import Redis

from resilient_http import BreakerPolicy, CircuitOpenError, Policy, ResilientClient, RetryPolicy
from resilient_http.redis import RedisStateStore

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- Redis -------------------------------------------------------------------------


class RedisServer:
    """``redis-server`` on 127.0.0.1: no snapshots, no append-only file."""

    def __init__(self, *extra_args: str) -> None:
        self.extra_args = extra_args
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError(
                "redis-server is not installed: `apt-get install redis-server` "
                "(.ci/run installs it)"
            )
        self.executable = executable
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start (port {self.port})")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith((b"+PONG", b"-NOAUTH")):
                    return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                process.kill()
                process.wait()


# -- the upstream ----------------------------------------------------------------------


@dataclass
class Upstream:
    url: str
    key: str
    hits: collections.Counter[str] = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    gate: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        self.gate.clear()
        with self.lock:
            self.hits.clear()

    def count(self, path: str) -> int:
        with self.lock:
            return self.hits[path]


@contextlib.contextmanager
def start_upstream() -> Iterator[Upstream]:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from .server import listening_socket

    sock = listening_socket()
    port = sock.getsockname()[1]
    upstream = Upstream(url=f"http://127.0.0.1:{port}", key=f"127.0.0.1:{port}")

    def hit(request: Request) -> None:
        with upstream.lock:
            upstream.hits[request.url.path] += 1

    async def ok(request: Request) -> Response:
        hit(request)
        return PlainTextResponse("ok")

    async def fail(request: Request) -> Response:
        hit(request)
        return PlainTextResponse("down", status_code=503)

    async def gate(request: Request) -> Response:
        hit(request)
        for _ in range(5000):  # bounded: a test that forgets the gate cannot wedge us
            if upstream.gate.is_set():
                break
            await asyncio.sleep(0.002)
        return PlainTextResponse("released")

    async def hang(request: Request) -> Response:
        hit(request)
        while (await request.receive())["type"] != "http.disconnect":
            pass
        return PlainTextResponse("too late")

    app = Starlette(
        routes=[
            Route("/ok", ok),
            Route("/fail", fail),
            Route("/gate", gate),
            Route("/hang", hang),
        ]
    )
    config = uvicorn.Config(app, log_level="error", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:  # pragma: no cover
                raise RuntimeError("upstream did not start")
            time.sleep(0.01)
        yield upstream
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        if thread.is_alive():  # pragma: no cover
            server.force_exit = True
            thread.join(timeout=5)
        sock.close()


# -- the parent's handle on a worker -------------------------------------------------------


class Worker:
    """One worker process. ``call`` sends a command and waits for its reply;
    ``send`` + ``receive`` let several workers run a command at once."""

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.redis_worker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._ids = 0
        self._buffer = b""
        self._replies: dict[int, dict[str, Any]] = {}

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, op: str, **args: Any) -> int:
        self._ids += 1
        assert self.process.stdin is not None
        line = json.dumps({"id": self._ids, "op": op, **args}) + "\n"
        self.process.stdin.write(line.encode())
        self.process.stdin.flush()
        return self._ids

    def receive(self, command_id: int, timeout: float = 30.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while command_id not in self._replies:
            while b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                reply = json.loads(line)
                self._replies[reply["id"]] = reply
            if command_id in self._replies:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"worker gave no reply to command {command_id}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise RuntimeError("worker exited")
                self._buffer += chunk
        reply = self._replies.pop(command_id)
        if "error" in reply:
            raise RuntimeError(f"worker failed: {reply['error']}")
        return reply

    def call(self, op: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
        return self.receive(self.send(op, **args), timeout)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def close(self) -> None:
        if self.alive:
            with contextlib.suppress(OSError):
                self.send("exit")
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.kill()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


# -- the worker process --------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[str, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelname, record.name, record.getMessage()))


class _WorkerState:
    def __init__(self) -> None:
        self.client: Any = None
        self.redis: Any = None
        self.store: Any = None
        self.upstream = ""
        self.key = ""
        self.stats: collections.Counter[str] = collections.Counter()
        self.records = _Records()
        logging.getLogger("resilient_http").addHandler(self.records)
        logging.getLogger("resilient_http").setLevel(logging.DEBUG)
        self.background: set[asyncio.Task[Any]] = set()

    async def close(self) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        self.background.clear()
        if self.client is not None:
            await self.client.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        self.client = self.redis = self.store = None

    @property
    def breaker(self) -> Any:
        return self.client.transport.breaker(self.key)

    async def configure(self, args: dict[str, Any]) -> dict[str, Any]:
        await self.close()
        self.stats.clear()
        self.records.records.clear()
        self.upstream = args["upstream"]
        self.key = args["key"]
        self.redis = Redis(host="127.0.0.1", port=args["redis_port"])
        self.store = RedisStateStore(
            self.redis,
            prefix=args["prefix"],
            quorum=args.get("quorum", 1),
            timeout=args.get("timeout", 0.25),
            lease=args.get("lease", 5.0),
            retry_interval=args.get("retry_interval", 0.2),
        )
        breaker = BreakerPolicy(
            failure_threshold=args.get("threshold", 3),
            recovery_timeout=args.get("recovery", 30.0),
            half_open_max_calls=args.get("half_open_max_calls", 1),
        )
        self.client = ResilientClient(
            base_url=self.upstream,
            policy=Policy(breaker=breaker, retry=RetryPolicy(attempts=1)),
            store=self.store,
            timeout=10.0,
        )
        self.breaker  # noqa: B018  (create the breaker now, so pushes reach it)
        return {"connected": await self.store.connect()}

    async def request(self, path: str) -> str:
        try:
            response = await self.client.get(path)
        except CircuitOpenError:
            self.stats["rejected"] += 1
            return "rejected"
        self.stats[str(response.status_code)] += 1
        return str(response.status_code)

    async def hammer(self, args: dict[str, Any]) -> dict[str, Any]:
        """Call ``path`` every ``interval`` s until ``until`` ("rejected": the
        first rejection; "closed": the breaker reads closed), ``calls`` calls
        or ``deadline`` s."""
        until = args.get("until")
        results: collections.Counter[str] = collections.Counter()
        deadline = time.monotonic() + args.get("deadline", 15.0)
        calls = args.get("calls", 1_000_000)
        while time.monotonic() < deadline and sum(results.values()) < calls:
            if until == "closed" and self.breaker.state.value == "closed":
                break
            result = await self.request(args["path"])
            results[result] += 1
            if until == "rejected" and result == "rejected":
                break
            # jittered, so that the workers do not march in lockstep
            await asyncio.sleep(args.get("interval", 0.01) * random.uniform(0.5, 1.5))
        return {"results": dict(results), "state": self.breaker.state.value}

    def status(self) -> dict[str, Any]:
        return {
            "state": self.breaker.state.value,
            "connected": self.store.connected,
            "stats": dict(self.stats),
        }

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        op = command["op"]
        if op == "configure":
            return await self.configure(command)
        if op == "request":
            return {"result": await self.request(command["path"])}
        if op == "start":  # a request left running in the background
            task = asyncio.ensure_future(self.request(command["path"]))
            self.background.add(task)
            return {}
        if op == "hammer":
            return await self.hammer(command)
        if op == "status":
            return self.status()
        if op == "wait":  # until the breaker reads `state` and/or the store is `connected`
            deadline = time.monotonic() + command.get("timeout", 10.0)
            while time.monotonic() < deadline:
                status = self.status()
                if status["state"] == command.get("state", status["state"]) and status[
                    "connected"
                ] == command.get("connected", status["connected"]):
                    return {"ok": True, **status}
                await asyncio.sleep(0.005)
            return {"ok": False, **self.status()}
        if op == "reset":
            self.breaker.reset()
            return {}
        if op == "logs":
            return {"records": [r for r in self.records.records if r[1] == "resilient_http.redis"]}
        raise ValueError(f"unknown op {op!r}")


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    loop.slow_callback_duration = 2.0  # building a client loads CA certificates (~0.2 s)
    reader = asyncio.StreamReader()
    stdin, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    state = _WorkerState()
    out = sys.stdout.buffer
    tasks: set[asyncio.Task[None]] = set()

    def reply(data: dict[str, Any]) -> None:
        out.write(json.dumps(data).encode() + b"\n")
        out.flush()

    async def run(command: dict[str, Any]) -> None:
        try:
            result = await state.handle(command)
        except Exception as exc:
            reply({"id": command["id"], "error": f"{type(exc).__name__}: {exc}"})
        else:
            reply({"id": command["id"], **result})

    try:
        while line := await reader.readline():
            command = json.loads(line)
            if command["op"] == "exit":
                break
            task = loop.create_task(run(command))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await state.close()
        stdin.close()


if __name__ == "__main__":
    asyncio.run(_serve())
