"""A health endpoint showing every circuit, in a Starlette service that calls an
upstream through resilient_http (needs starlette and uvicorn).

    python examples/health_endpoint.py              # a scripted tour, then exit
    python examples/health_endpoint.py --serve --upstream https://api.example.com
    curl -i http://127.0.0.1:8000/health

``GET /health`` returns ``ResilientTransport.snapshot()``::

    HTTP/1.1 200 OK                      (503 Service Unavailable while a circuit is open)
    {"status": "ok",                     ("degraded" while a circuit is open)
     "open": [],                         (the breaker keys of the open circuits)
     "circuits": {"api.example.com:443": {"state": "closed", "consecutive_failures": 0,
                                          "opened_total": 0, "retry_after": 0.0, ...}}}

Half-open counts as healthy: the breaker is already letting probes through.
Point dashboards, alerts or a load balancer's "degraded" check at it. Do not use
it as a liveness probe: restarting a process because its upstream is down fixes
nothing and turns one outage into two.

``GET /upstream/{path}`` forwards to the upstream through the resilient client;
while the upstream's circuit is open it answers at once with a 503 and a
``Retry-After`` header instead of waiting on a sick host. With ``--metrics``
(needs prometheus-client) ``GET /metrics`` exports the breakers' metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator, Callable, Sequence

import httpx
import uvicorn
from _upstream import Upstream, serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from resilient_http import BreakerPolicy, CircuitOpenError, Event, Policy, ResilientTransport


def make_transport(
    recovery_timeout: float = 10.0, listeners: Sequence[Callable[[Event], object]] = ()
) -> ResilientTransport:
    return ResilientTransport(
        policy=Policy(
            breaker=BreakerPolicy(failure_threshold=3, recovery_timeout=recovery_timeout)
        ),
        listeners=listeners,
    )


def create_app(
    upstream: str, transport: ResilientTransport | None = None, routes: Sequence[Route] = ()
) -> Starlette:
    """The service: ``/health``, ``/upstream/{path}`` and any extra ``routes``.
    ``app.state.transport`` is the :class:`ResilientTransport` every upstream
    call goes through."""
    if transport is None:
        transport = make_transport()
    upstream_url = httpx.URL(upstream)

    @transport.fallback(upstream_url.host)
    def unavailable(request: httpx.Request, error: CircuitOpenError) -> httpx.Response:
        headers = {}
        if not math.isinf(error.retry_after):
            headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
        return httpx.Response(503, json={"error": "upstream unavailable"}, headers=headers)

    client = httpx.AsyncClient(transport=transport, base_url=upstream_url, timeout=5.0)

    async def health(request: Request) -> JSONResponse:
        circuits = transport.snapshot()
        opened = sorted(key for key, data in circuits.items() if data["state"] == "open")
        return JSONResponse(
            {"status": "degraded" if opened else "ok", "open": opened, "circuits": circuits},
            status_code=503 if opened else 200,
            headers={"Cache-Control": "no-store"},
        )

    async def forward(request: Request) -> Response:
        answer = await client.get("/" + request.path_params["path"])
        retry_after = answer.headers.get("retry-after")
        return Response(
            answer.content,
            status_code=answer.status_code,
            media_type=answer.headers.get("content-type"),
            headers={"Retry-After": retry_after} if retry_after else None,
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with client:  # closes the transport and its connections on shutdown
            yield

    app = Starlette(
        routes=[Route("/health", health), Route("/upstream/{path:path}", forward), *routes],
        lifespan=lifespan,
    )
    app.state.transport = transport
    return app


# -- the tour -----------------------------------------------------------------------

RECOVERY_TIMEOUT = 0.3  # seconds; short here so the tour ends quickly


async def show(service: httpx.AsyncClient, path: str) -> None:
    response = await service.get(path)
    body = response.json()
    if path == "/health":
        states = {key: data["state"] for key, data in body["circuits"].items()}
        body = {"status": body["status"], "open": len(body["open"]), "circuits": states}
    retry_after = response.headers.get("retry-after")
    extra = f" (Retry-After: {retry_after})" if retry_after else ""
    print(f"  GET {path} -> {response.status_code} {json.dumps(body)}{extra}")


async def tour(base_url: str, upstream: Upstream) -> None:
    app = create_app(base_url, make_transport(RECOVERY_TIMEOUT))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as svc,
    ):
        print("1. the upstream is healthy")
        await show(svc, "/upstream/orders")
        await show(svc, "/health")
        print("2. the upstream fails: one call, three attempts, three 503s: the circuit opens")
        upstream.set("down")
        await show(svc, "/upstream/orders")
        await show(svc, "/health")
        print("3. while it is open, calls are answered at once, without touching the upstream")
        before = upstream.hits()
        await show(svc, "/upstream/orders")
        print(f"  requests that reached the upstream meanwhile: {upstream.hits() - before}")
        print("4. the upstream recovers; after the recovery timeout a probe closes the circuit")
        upstream.set("ok")
        await asyncio.sleep(RECOVERY_TIMEOUT)
        await show(svc, "/upstream/orders")
        await show(svc, "/health")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help="run the service until stopped")
    parser.add_argument("--upstream", default="http://127.0.0.1:8001", help="upstream base URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--metrics", action="store_true", help="export /metrics (Prometheus)")
    args = parser.parse_args(argv)
    if not args.serve:
        upstream = Upstream()
        with serve(upstream) as base_url:  # a real local upstream, on 127.0.0.1
            asyncio.run(tour(base_url, upstream))
        return
    if args.metrics:  # needs prometheus-client: pip install 'resilient-http[prometheus]'
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        from resilient_http.prometheus import PrometheusMetrics

        async def metrics(request: Request) -> Response:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        transport = make_transport(listeners=[PrometheusMetrics()])
        app = create_app(args.upstream, transport, [Route("/metrics", metrics)])
    else:
        app = create_app(args.upstream)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
