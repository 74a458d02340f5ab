"""resilient_http under the openai SDK (and any SDK generated the same way).

    python examples/openai_sdk.py  # needs: pip install 'resilient-http[httpx2]' openai

openai 3.x is built on httpx2, so the client comes from ``resilient_http.httpx2``:
the same classes, bound to httpx2.

Against a local fake of the API (an in-process ASGI app: nothing leaves this
process), it shows the four things to get right:

1. **One retry layer.** The SDK retries 5xx and connection errors itself
   (``max_retries=2``); with ours underneath, a GET is tried up to 3 x 3 = 9
   times. Keep ours (budget, breaker-aware, never while the circuit is open):
   ``max_retries=0`` on the SDK.
2. **Open circuits fail fast.** Without a fallback the SDK sees a
   ``CircuitOpenError`` as a connection error and retries it with its own
   backoff, for over a second, never touching the server. Register
   ``service_unavailable``: a 503 with ``x-should-retry: false``, which the SDK
   raises at once.
3. **Timeouts.** The SDK adopts the client's timeout unless it equals httpx2's
   default: pass the SDK's own ``timeout=`` to keep it (600 s for completions).
4. **Streaming fallbacks.** A ``stream=True`` call reads server-sent events: a
   fallback for it must answer ``text/event-stream``, not JSON, or the stream
   is silently empty.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx2
import openai
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from resilient_http.httpx2 import (
    BreakerPolicy,
    CircuitOpenError,
    Policy,
    ResilientClient,
    RetryPolicy,
    service_unavailable,
)

API = "https://api.openai.example/v1"
HOST = "api.openai.example"


class FakeAPI:
    """``GET /v1/models``, ``POST /v1/chat/completions``; ``down`` makes both 503."""

    def __init__(self) -> None:
        self.hits = 0
        self.down = True
        self.app = Starlette(
            routes=[
                Route("/v1/models", self.models),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
            ]
        )

    def _sick(self) -> Response | None:
        self.hits += 1
        if self.down:
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
        return None

    async def models(self, request: Request) -> Response:
        return self._sick() or JSONResponse({"object": "list", "data": []})

    async def chat(self, request: Request) -> Response:
        sick = self._sick()
        if sick is not None:
            return sick
        return JSONResponse(
            {
                "id": "c1",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "hello"},
                    }
                ],
            }
        )


def sdk(http_client: httpx2.AsyncClient, **options: object) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="sk-test",
        base_url=API,
        http_client=http_client,
        **options,  # type: ignore[arg-type]
    )


def resilient(api: FakeAPI, **options: object) -> ResilientClient:
    return ResilientClient(
        transport=httpx2.ASGITransport(app=api.app),
        policy=Policy(breaker=BreakerPolicy(failure_threshold=5), retry=RetryPolicy(attempts=3)),
        **options,  # type: ignore[arg-type]
    )


async def list_models(client: openai.AsyncOpenAI) -> str:
    try:
        await client.models.list()
    except openai.APIError as exc:
        return type(exc).__name__
    return "ok"


async def one_retry_layer() -> None:
    print("1. one retry layer: GET /v1/models against a 503 upstream")
    for label, max_retries in (("SDK retries + ours", 2), ("ours only (max_retries=0)", 0)):
        api = FakeAPI()
        async with resilient(api) as http:
            started = time.perf_counter()
            outcome = await list_models(sdk(http, max_retries=max_retries))
            print(
                f"   {label}: {outcome}, upstream hit {api.hits}x "
                f"in {time.perf_counter() - started:.1f} s"
            )


async def open_circuits_fail_fast() -> None:
    print("2. an open circuit under the SDK")
    for label, fallback in (("no fallback", False), ("service_unavailable", True)):
        api = FakeAPI()
        async with resilient(api) as http:
            if fallback:
                http.transport.fallback(HOST, service_unavailable)
            http.transport.breaker(f"https://{HOST}/").force_open()
            started = time.perf_counter()
            outcome = await list_models(sdk(http))  # the SDK's default max_retries=2
            elapsed = (time.perf_counter() - started) * 1000
            print(f"   {label}: {outcome} in {elapsed:.0f} ms; upstream hit {api.hits}x")


async def keep_the_sdks_timeout() -> None:
    print("3. timeouts")
    async with ResilientClient() as http:
        print(f"   SDK timeout with ResilientClient's defaults: {sdk(http).timeout}")
        kept = sdk(http, timeout=openai.DEFAULT_TIMEOUT)
        print(f"   SDK timeout when passed explicitly: {kept.timeout}")


def streaming_fallback(request: httpx2.Request, error: CircuitOpenError) -> httpx2.Response:
    """A fallback that also answers streamed completions: SSE for ``stream=True``."""
    payload = json.loads(request.content or b"{}")
    if not payload.get("stream"):
        return service_unavailable(request, error)
    chunk = {
        "id": "fallback",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": payload.get("model", ""),
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": "(the assistant is busy)"},
                "finish_reason": "stop",
            }
        ],
    }
    body = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n"
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, text=body)


async def streaming_fallbacks() -> None:
    print("4. a streaming fallback")
    api = FakeAPI()
    async with resilient(api) as http:
        http.transport.fallback(HOST, streaming_fallback)
        http.transport.breaker(f"https://{HOST}/").force_open()
        stream = await sdk(http).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream])
        print(f"   streamed from the fallback: {text!r}; upstream hit {api.hits}x")


async def main() -> None:
    await one_retry_layer()
    await open_circuits_fail_fast()
    await keep_the_sdks_timeout()
    await streaming_fallbacks()


if __name__ == "__main__":
    asyncio.run(main())
