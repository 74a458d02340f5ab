"""resilient_http under the anthropic SDK, which is built on httpx2.

    python examples/anthropic_sdk.py  # needs: pip install 'resilient-http[httpx2]' anthropic

The SDK takes an httpx2 client, so the client comes from
``resilient_http.httpx2``: the same classes, bound to httpx2. Against a local
fake of the Messages API (an in-process ASGI app: nothing leaves this process),
it shows the three things to get right:

1. **One retry layer.** The SDK retries 5xx, 529 and connection errors itself
   (``max_retries=2``); with ours underneath, a call is tried up to 3 x 3 times.
   A POST is never retried by us unless it carries an ``Idempotency-Key``, so
   keep the SDK's retries for completions, or turn them off
   (``max_retries=0``) and add the key to retry them with our budget and breaker.
2. **Open circuits fail fast.** Without a fallback the SDK sees a
   ``CircuitOpenError`` as a connection error and retries it with its own
   backoff, for over a second, never touching the server. Register
   ``service_unavailable``: a 503 with ``x-should-retry: false``, which the SDK
   raises at once.
3. **Timeouts.** The SDK adopts the client's timeout unless it equals httpx2's
   default: pass the SDK's own ``timeout=`` to keep it (600 s).
"""

from __future__ import annotations

import asyncio
import time

import anthropic
import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from resilient_http.httpx2 import (
    BreakerPolicy,
    Policy,
    ResilientClient,
    RetryPolicy,
    service_unavailable,
)

API = "https://api.anthropic.example"
HOST = "api.anthropic.example"
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-test",
    "content": [{"type": "text", "text": "hello"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 1},
}


class FakeMessagesAPI:
    """``POST /v1/messages``; ``down`` makes it answer 529 (overloaded)."""

    def __init__(self, down: bool = True) -> None:
        self.hits = 0
        self.down = down
        self.app = Starlette(routes=[Route("/v1/messages", self.messages, methods=["POST"])])

    async def messages(self, request: Request) -> Response:
        self.hits += 1
        if self.down:
            error = {"type": "overloaded_error", "message": "Overloaded"}
            return JSONResponse({"type": "error", "error": error}, status_code=529)
        return JSONResponse(MESSAGE)


def sdk(http_client: httpx2.AsyncClient, **options: object) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        api_key="sk-ant-test",
        base_url=API,
        http_client=http_client,
        **options,  # type: ignore[arg-type]
    )


def resilient(api: FakeMessagesAPI) -> ResilientClient:
    return ResilientClient(
        transport=httpx2.ASGITransport(app=api.app),
        policy=Policy(
            # 529 is Anthropic's "overloaded": a 5xx, so a failure; retryable too
            breaker=BreakerPolicy(failure_threshold=5),
            retry=RetryPolicy(attempts=3, statuses=frozenset({429, 500, 502, 503, 504, 529})),
        ),
    )


async def ask(client: anthropic.AsyncAnthropic, **headers: str) -> str:
    try:
        await client.messages.create(
            model="claude-test",
            max_tokens=16,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers=headers or None,
        )
    except anthropic.APIError as exc:
        return type(exc).__name__
    return "ok"


async def one_retry_layer() -> None:
    print("1. one retry layer: POST /v1/messages against an overloaded upstream")
    cases: tuple[tuple[str, int, dict[str, str]], ...] = (
        ("SDK retries, ours skip the POST", 2, {}),
        ("ours only, with an Idempotency-Key", 0, {"Idempotency-Key": "req-1"}),
    )
    for label, max_retries, headers in cases:
        api = FakeMessagesAPI()
        async with resilient(api) as http:
            started = time.perf_counter()
            outcome = await ask(sdk(http, max_retries=max_retries), **headers)
            elapsed = time.perf_counter() - started
            print(f"   {label}: {outcome}, upstream hit {api.hits}x in {elapsed:.1f} s")


async def open_circuits_fail_fast() -> None:
    print("2. an open circuit under the SDK")
    for label, fallback in (("no fallback", False), ("service_unavailable", True)):
        api = FakeMessagesAPI(down=False)
        async with resilient(api) as http:
            if fallback:
                http.transport.fallback(HOST, service_unavailable)
            http.transport.breaker(f"https://{HOST}/").force_open()
            started = time.perf_counter()
            outcome = await ask(sdk(http))  # the SDK's default max_retries=2
            elapsed = (time.perf_counter() - started) * 1000
            print(f"   {label}: {outcome} in {elapsed:.0f} ms; upstream hit {api.hits}x")


async def keep_the_sdks_timeout() -> None:
    print("3. timeouts")
    async with ResilientClient() as http:
        print(f"   SDK timeout with ResilientClient's defaults: {sdk(http).timeout}")
        kept = sdk(http, timeout=anthropic.DEFAULT_TIMEOUT)
        print(f"   SDK timeout when passed explicitly: {kept.timeout}")


async def main() -> None:
    await one_retry_layer()
    await open_circuits_fail_fast()
    await keep_the_sdks_timeout()


if __name__ == "__main__":
    asyncio.run(main())
