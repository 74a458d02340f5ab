"""ResilientClient: an httpx.AsyncClient whose transport is a ResilientTransport."""

from __future__ import annotations

import math
import ssl

import httpcore
import httpx
import pytest

from resilient_http import (
    BreakerPolicy,
    CircuitOpenError,
    CircuitState,
    Event,
    Policy,
    ResilientClient,
    ResilientTransport,
    RetryPolicy,
    StateChanged,
)


class Upstream(httpx.AsyncBaseTransport):
    def __init__(self, code: int = 200) -> None:
        self.code = code
        self.requests: list[httpx.Request] = []
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.code, text="ok")

    async def aclose(self) -> None:
        self.closed = True


def pool_of(client: ResilientClient) -> httpcore.AsyncConnectionPool:
    inner = client.transport.inner
    assert isinstance(inner, httpx.AsyncHTTPTransport)
    pool = inner._pool
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    return pool


def test_is_an_async_client_subclass() -> None:
    assert issubclass(ResilientClient, httpx.AsyncClient)


async def test_client_transport_is_the_resilient_transport_requests_go_through() -> None:
    upstream = Upstream()
    async with ResilientClient(transport=upstream) as client:
        assert isinstance(client.transport, ResilientTransport)
        assert client.transport.inner is upstream
        response = await client.get("https://api.example.com/x")
        assert response.status_code == 200
        assert "api.example.com:443" in client.transport.snapshot()
    assert len(upstream.requests) == 1


async def test_default_inner_transport_is_an_http_transport() -> None:
    async with ResilientClient() as client:
        assert isinstance(client.transport.inner, httpx.AsyncHTTPTransport)


async def test_default_timeout_is_never_no_timeout() -> None:
    async with ResilientClient() as client:
        timeout = client.timeout
        for name in ("connect", "read", "write", "pool"):
            value = getattr(timeout, name)
            assert value is not None, name
            assert 0 < value < math.inf, name


async def test_default_timeout_reaches_each_request() -> None:
    upstream = Upstream()
    async with ResilientClient(transport=upstream) as client:
        await client.get("https://api.example.com/")
    timeouts = upstream.requests[0].extensions["timeout"]
    assert all(timeouts[k] is not None for k in ("connect", "read", "write", "pool"))


async def test_explicit_timeout_is_respected() -> None:
    async with ResilientClient(timeout=httpx.Timeout(2.0)) as client:
        assert client.timeout == httpx.Timeout(2.0)


async def test_httpx_client_kwargs_pass_through() -> None:
    upstream = Upstream()
    async with ResilientClient(
        transport=upstream,
        base_url="https://api.example.com/v1",
        headers={"User-Agent": "shop/1.0"},
        params={"lang": "en"},
    ) as client:
        await client.get("items")
    [request] = upstream.requests
    assert request.url == httpx.URL("https://api.example.com/v1/items?lang=en")
    assert request.headers["user-agent"] == "shop/1.0"


async def test_policy_hosts_and_listeners_reach_the_transport() -> None:
    events: list[Event] = []
    upstream = Upstream(503)
    async with ResilientClient(
        transport=upstream,
        policy=Policy(retry=RetryPolicy(attempts=1)),
        hosts={
            "payments.example.com": Policy(
                breaker=BreakerPolicy(failure_threshold=1), retry=RetryPolicy(attempts=1)
            )
        },
        listeners=[events.append],
    ) as client:
        await client.post("https://payments.example.com/charge")
        await client.post("https://shop.example.com/cart")
        assert client.transport.breaker("payments.example.com").state is CircuitState.OPEN
        assert client.transport.breaker("shop.example.com").state is CircuitState.CLOSED
        assert client.transport.breaker("shop.example.com").policy.failure_threshold == 5
        with pytest.raises(CircuitOpenError):
            await client.post("https://payments.example.com/charge")
    assert len(upstream.requests) == 2
    assert [e.host for e in events if isinstance(e, StateChanged)] == ["payments.example.com:443"]


async def test_verify_http2_and_limits_configure_the_inner_transport() -> None:
    limits = httpx.Limits(max_connections=7, max_keepalive_connections=3, keepalive_expiry=9)
    async with ResilientClient(verify=False, http2=True, limits=limits) as client:
        pool = pool_of(client)
        assert pool._http2 is True
        assert pool._max_connections == 7
        assert pool._max_keepalive_connections == 3
        assert pool._keepalive_expiry == 9
        assert pool._ssl_context is not None
        assert pool._ssl_context.verify_mode == ssl.CERT_NONE


async def test_default_inner_transport_verifies_and_uses_httpx_limits() -> None:
    async with ResilientClient() as client:
        pool = pool_of(client)
        assert pool._http2 is False
        assert pool._ssl_context is not None
        assert pool._ssl_context.verify_mode == ssl.CERT_REQUIRED
        assert pool._max_connections == httpx.Limits(max_connections=100).max_connections


async def test_http1_false_with_http2_reaches_the_inner_transport() -> None:
    async with ResilientClient(http1=False, http2=True) as client:
        pool = pool_of(client)
        assert pool._http1 is False
        assert pool._http2 is True


async def test_proxy_reaches_the_inner_transport() -> None:
    async with ResilientClient(proxy="http://proxy.internal:3128") as client:
        inner = client.transport.inner
        assert isinstance(inner, httpx.AsyncHTTPTransport)
        assert isinstance(inner._pool, httpcore.AsyncHTTPProxy)


@pytest.mark.parametrize(
    "kwargs",
    [{"verify": False}, {"http2": True}, {"limits": httpx.Limits(max_connections=1)}],
)
def test_transport_kwargs_with_an_explicit_inner_transport_are_an_error(
    kwargs: dict[str, object],
) -> None:
    """Never silently ignored: they cannot reach a transport the caller built."""
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        ResilientClient(transport=Upstream(), **kwargs)  # type: ignore[arg-type]


async def test_async_with_closes_the_inner_transport() -> None:
    upstream = Upstream()
    async with ResilientClient(transport=upstream) as client:
        await client.get("https://api.example.com/")
        assert not upstream.closed
    assert upstream.closed
    assert client.is_closed


async def test_aclose_closes_the_inner_transport() -> None:
    upstream = Upstream()
    client = ResilientClient(transport=upstream)
    await client.aclose()
    assert upstream.closed
