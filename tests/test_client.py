"""ResilientClient: an httpx.AsyncClient whose transport is a ResilientTransport."""

from __future__ import annotations

import math
import ssl
from collections.abc import Iterator

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

from .faults import start_faults
from .server import LiveServer


@pytest.fixture(scope="module")
def fault_proxy() -> Iterator[int]:
    """The fault server as a forward proxy: it answers absolute-form requests
    (``GET http://origin/path``) by their path, as any of its routes."""
    with start_faults() as server:
        yield server.port


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


# -- every route through the one transport --------------------------------------------


async def test_mounted_routes_go_through_the_breaker() -> None:
    """README: ``mounts=`` routes are guarded like the rest (httpx alone would send
    them around ``transport=``), and ``client.transport`` reaches their breakers."""
    mounted_hits = 0

    def mounted(request: httpx.Request) -> httpx.Response:
        nonlocal mounted_hits
        mounted_hits += 1
        return httpx.Response(503)

    client = ResilientClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(200)),
        mounts={"https://mounted.example.com": httpx.MockTransport(mounted)},
        policy=Policy(breaker=BreakerPolicy(failure_threshold=1), retry=RetryPolicy(attempts=1)),
    )
    async with client:
        assert (await client.get("https://mounted.example.com/")).status_code == 503
        with pytest.raises(CircuitOpenError):
            await client.get("https://mounted.example.com/")
        assert (await client.get("https://other.example.com/")).status_code == 200
    assert mounted_hits == 1
    assert client.transport.breaker("https://mounted.example.com/").state is CircuitState.OPEN


async def test_proxies_from_the_environment_are_used_and_breakers_key_the_origin(
    monkeypatch: pytest.MonkeyPatch, fault_proxy: int
) -> None:
    """``HTTP_PROXY`` is honoured as httpx would honour it, below the breaker:
    the request reaches the proxy, and the breaker is the origin's."""
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{fault_proxy}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    policy = Policy(breaker=BreakerPolicy(failure_threshold=1), retry=RetryPolicy(attempts=1))
    async with ResilientClient(policy=policy) as client:
        # origin.invalid never resolves: only the proxy can answer
        response = await client.get("http://origin.invalid/status/503")
        assert response.status_code == 503
        assert set(client.transport.snapshot()) == {"origin.invalid:80"}
        assert client.transport.snapshot()["origin.invalid:80"]["state"] == "open"


async def test_no_proxy_hosts_are_reached_directly(
    monkeypatch: pytest.MonkeyPatch, live: LiveServer
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with ResilientClient() as client:
        assert (await client.get(f"{live.url}/status/200")).status_code == 200


async def test_trust_env_false_ignores_environment_proxies(
    monkeypatch: pytest.MonkeyPatch, live: LiveServer
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    async with ResilientClient(trust_env=False) as client:
        assert (await client.get(f"{live.url}/status/200")).status_code == 200


def test_a_ready_resilient_transport_takes_no_mounts() -> None:
    with pytest.raises(TypeError, match="mounts"):
        ResilientClient(
            transport=ResilientTransport(httpx.MockTransport(lambda r: httpx.Response(200))),
            mounts={"all://": None},
        )


@pytest.mark.parametrize(
    ("pattern", "url", "matches"),
    [
        ("all://", "http://example.com", True),
        ("https://", "http://example.com", False),
        ("http://example.com", "http://example.com/path", True),
        ("http://example.com", "http://www.example.com", False),
        ("all://*example.com", "https://example.com", True),
        ("all://*example.com", "https://www.example.com", True),
        ("all://*example.com", "https://notexample.com", False),
        ("all://*.example.com", "https://example.com", False),
        ("all://*.example.com", "https://www.example.com", True),
        ("http://example.com:8080", "http://example.com:8080", True),
        ("http://example.com:8080", "http://example.com", False),
        ("all://[::1]", "http://[::1]:8000", True),
    ],
)
def test_mount_patterns_match_as_httpx_matches_them(pattern: str, url: str, matches: bool) -> None:
    from resilient_http._async._router import Router

    marker = httpx.MockTransport(lambda request: httpx.Response(200))
    default = httpx.MockTransport(lambda request: httpx.Response(200))
    router = Router(default, {pattern: marker})
    assert (router.transport_for(httpx.URL(url)) is marker) is matches


def test_the_most_specific_mount_wins() -> None:
    from resilient_http._async._router import Router

    default, everything, host, port = (
        httpx.MockTransport(lambda request: httpx.Response(200)) for _ in range(4)
    )
    router = Router(
        default,
        {"all://": everything, "https://api.example.com": host, "all://api.example.com:8443": port},
    )
    assert router.transport_for(httpx.URL("https://other.example.com")) is everything
    assert router.transport_for(httpx.URL("https://api.example.com")) is host
    assert router.transport_for(httpx.URL("https://api.example.com:8443")) is port
    assert Router(default, {"all://": None}).transport_for(httpx.URL("http://a")) is default


def test_environment_proxies_are_read_as_httpx_reads_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from resilient_http._routing import environment_proxies

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost, 10.0.0.1,.corp.example, ::1")
    assert environment_proxies() == {
        "https://": "http://proxy.internal:3128",
        "all://localhost": None,
        "all://10.0.0.1": None,
        "all://*.corp.example": None,
        "all://[::1]": None,
    }
    monkeypatch.setenv("NO_PROXY", "*")
    assert environment_proxies() == {}


def test_a_mount_that_is_not_a_transport_is_refused() -> None:
    with pytest.raises(TypeError, match=r"mounts\['all://'\].*AsyncBaseTransport"):
        ResilientClient(mounts={"all://": "http://proxy"})  # type: ignore[dict-item]
