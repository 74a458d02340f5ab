"""``ResilientClient`` and ``SyncResilientClient``: an httpx client whose
transport is the resilient one, on every binding (httpx and httpx2, async on
asyncio and trio, sync in worker threads). Its httpx keywords, its default
timeout, the connection settings it hands the inner transport, its lifetime,
``mounts`` (httpx's patterns and precedence) and the proxies of the environment,
each route guarded by a breaker keyed by the origin.

What tests/contract/test_contract.py already checks of the client (its kind,
entering and exiting the inner transport, a mount guarded like any route, the
30 s read timeout) is not repeated here.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import httpcore
import httpcore2
import httpx2
import pytest

from resilient_http import (
    BreakerPolicy,
    CircuitState,
    Event,
    Policy,
    RetryPolicy,
    StateChanged,
)
from resilient_http._routing import environment_proxies

from ..bindings import Binding
from ..faults import start_faults
from ..server import LiveServer

URL = "https://api.example.com/x"


@pytest.fixture(scope="module")
def fault_proxy() -> Iterator[int]:
    """The fault server as a forward proxy: it answers absolute-form requests
    (``GET http://origin/path``) by their path, as any of its routes."""
    with start_faults() as server:
        yield server.port


class _Upstream:
    """The inner transport: answers ``code``, records the requests that reach it
    and whether it was closed. ``upstream()`` builds it as the binding's kind."""

    def __init__(self, binding: Binding, code: int) -> None:
        self.binding = binding
        self.code = code
        self.requests: list[Any] = []
        self.closed = False

    def handle_request(self, request: Any) -> Any:
        self.requests.append(request)
        return self.binding.response(self.code, text="ok")

    async def handle_async_request(self, request: Any) -> Any:
        return self.handle_request(request)

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def upstream(binding: Binding, code: int = 200) -> _Upstream:
    base = binding.http.BaseTransport if binding.sync else binding.http.AsyncBaseTransport
    inner: _Upstream = type("Upstream", (_Upstream, base), {})(binding, code)
    return inner


def http_transport_kind(binding: Binding) -> Any:
    """The binding's own HTTP transport class (what the client builds by default)."""
    return binding.http.HTTPTransport if binding.sync else binding.http.AsyncHTTPTransport


def core_of(binding: Binding) -> ModuleType:
    """The connection library under the binding's httpx: httpcore, or httpcore2 for httpx2."""
    return httpcore2 if binding.http is httpx2 else httpcore


def pool_of(binding: Binding, client: Any) -> Any:
    """The connection pool of the inner transport the client built."""
    inner = client.transport.inner
    assert isinstance(inner, http_transport_kind(binding))
    pool = inner._pool
    core = core_of(binding)
    assert isinstance(pool, core.ConnectionPool if binding.sync else core.AsyncConnectionPool)
    return pool


def mock(binding: Binding, code: int = 200) -> Any:
    return binding.mock(lambda request: binding.response(code))


# -- one transport, and httpx's own keywords ---------------------------------------------


async def test_client_transport_is_the_resilient_transport_requests_go_through(
    binding: Binding,
) -> None:
    inner = upstream(binding)
    async with binding.resilient_client(transport=inner) as client:
        assert isinstance(client.transport, binding.Transport)
        assert client.transport.inner is inner
        response = await client.get(URL)
        assert response.status_code == 200
        assert "api.example.com:443" in client.transport.snapshot()
    assert len(inner.requests) == 1


async def test_default_inner_transport_is_an_http_transport(binding: Binding) -> None:
    async with binding.resilient_client() as client:
        assert isinstance(client.transport.inner, http_transport_kind(binding))


async def test_default_timeout_is_never_no_timeout(binding: Binding) -> None:
    async with binding.resilient_client() as client:
        timeout = client.timeout
        for name in ("connect", "read", "write", "pool"):
            value = getattr(timeout, name)
            assert value is not None, name
            assert 0 < value < math.inf, name


async def test_default_timeout_reaches_each_request(binding: Binding) -> None:
    inner = upstream(binding)
    async with binding.resilient_client(transport=inner) as client:
        await client.get("https://api.example.com/")
    timeouts = inner.requests[0].extensions["timeout"]
    assert all(timeouts[k] is not None for k in ("connect", "read", "write", "pool"))


async def test_explicit_timeout_is_respected(binding: Binding) -> None:
    async with binding.resilient_client(timeout=binding.http.Timeout(2.0)) as client:
        assert client.timeout == binding.http.Timeout(2.0)


async def test_httpx_client_kwargs_pass_through(binding: Binding) -> None:
    inner = upstream(binding)
    async with binding.resilient_client(
        transport=inner,
        base_url="https://api.example.com/v1",
        headers={"User-Agent": "shop/1.0"},
        params={"lang": "en"},
    ) as client:
        await client.get("items")
    [request] = inner.requests
    assert request.url == binding.http.URL("https://api.example.com/v1/items?lang=en")
    assert request.headers["user-agent"] == "shop/1.0"


async def test_policy_hosts_and_listeners_reach_the_transport(binding: Binding) -> None:
    events: list[Event] = []
    inner = upstream(binding, 503)
    async with binding.resilient_client(
        transport=inner,
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
        with pytest.raises(binding.api.CircuitOpenError):
            await client.post("https://payments.example.com/charge")
    assert len(inner.requests) == 2
    assert [e.host for e in events if isinstance(e, StateChanged)] == ["payments.example.com:443"]


# -- connection settings go to the inner transport ---------------------------------------


async def test_verify_http2_and_limits_configure_the_inner_transport(binding: Binding) -> None:
    limits = binding.http.Limits(max_connections=7, max_keepalive_connections=3, keepalive_expiry=9)
    async with binding.resilient_client(verify=False, http2=True, limits=limits) as client:
        pool = pool_of(binding, client)
        assert pool._http2 is True
        assert pool._max_connections == 7
        assert pool._max_keepalive_connections == 3
        assert pool._keepalive_expiry == 9
        assert pool._ssl_context is not None
        assert pool._ssl_context.verify_mode == ssl.CERT_NONE


async def test_default_inner_transport_verifies_and_uses_httpx_limits(binding: Binding) -> None:
    async with binding.resilient_client() as client:
        pool = pool_of(binding, client)
        assert pool._http2 is False
        assert pool._ssl_context is not None
        assert pool._ssl_context.verify_mode == ssl.CERT_REQUIRED
        assert pool._max_connections == binding.http.Limits(max_connections=100).max_connections


async def test_http1_false_with_http2_reaches_the_inner_transport(binding: Binding) -> None:
    async with binding.resilient_client(http1=False, http2=True) as client:
        pool = pool_of(binding, client)
        assert pool._http1 is False
        assert pool._http2 is True


async def test_proxy_reaches_the_inner_transport(binding: Binding) -> None:
    async with binding.resilient_client(proxy="http://proxy.internal:3128") as client:
        inner = client.transport.inner
        assert isinstance(inner, http_transport_kind(binding))
        core = core_of(binding)
        assert isinstance(inner._pool, core.HTTPProxy if binding.sync else core.AsyncHTTPProxy)


@pytest.mark.parametrize(
    "setting",
    [
        pytest.param(lambda http: {"verify": False}, id="verify"),
        pytest.param(lambda http: {"http2": True}, id="http2"),
        pytest.param(lambda http: {"limits": http.Limits(max_connections=1)}, id="limits"),
    ],
)
async def test_transport_kwargs_with_an_explicit_inner_transport_are_an_error(
    binding: Binding, setting: Callable[[ModuleType], dict[str, object]]
) -> None:
    """Never silently ignored: they cannot reach a transport the caller built."""
    kwargs = setting(binding.http)
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        binding.resilient_client(transport=upstream(binding), **kwargs)


# -- lifetime ----------------------------------------------------------------------------


async def test_leaving_a_resilient_client_closes_the_inner_transport(binding: Binding) -> None:
    inner = upstream(binding)
    async with binding.resilient_client(transport=inner) as client:
        await client.get("https://api.example.com/")
        assert not inner.closed
    assert inner.closed
    assert client.is_closed


async def test_closing_a_resilient_client_closes_the_inner_transport(binding: Binding) -> None:
    inner = upstream(binding)
    client = binding.resilient_client(transport=inner)
    await client.aclose()  # close() for the sync client, in its worker thread
    assert inner.closed


# -- every route through the one transport: mounts ---------------------------------------


async def test_a_mounted_hosts_breaker_is_the_one_client_transport_reports(
    binding: Binding,
) -> None:
    """README: ``client.transport`` reaches the breakers of ``mounts=`` routes
    too (that they are guarded at all: test_contract.py)."""
    client = binding.resilient_client(
        transport=mock(binding, 200),
        mounts={"https://mounted.example.com": mock(binding, 503)},
        policy=Policy(breaker=BreakerPolicy(failure_threshold=1), retry=RetryPolicy(attempts=1)),
    )
    async with client:
        assert (await client.get("https://mounted.example.com/")).status_code == 503
    assert client.transport.breaker("https://mounted.example.com/").state is CircuitState.OPEN
    assert client.transport.snapshot()["mounted.example.com:443"]["state"] == "open"


async def test_a_ready_resilient_transport_takes_no_mounts(binding: Binding) -> None:
    with pytest.raises(TypeError, match="mounts"):
        binding.resilient_client(
            transport=binding.transport(mock(binding)),
            mounts={"all://": None},
        )


async def test_a_mount_that_is_not_a_transport_is_refused(binding: Binding) -> None:
    kind = "BaseTransport" if binding.sync else "AsyncBaseTransport"
    with pytest.raises(TypeError, match=rf"mounts\['all://'\].*{binding.http.__name__}\.{kind}"):
        binding.resilient_client(mounts={"all://": "http://proxy"})


def marked(binding: Binding, tag: str) -> Any:
    """A mock transport that answers with ``tag`` as its body."""
    return binding.mock(lambda request: binding.response(200, text=tag))


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
async def test_mount_patterns_match_as_httpx_matches_them(
    binding: Binding, pattern: str, url: str, matches: bool
) -> None:
    """The router below the breaker picks the mount, and so does the binding's
    own httpx client given the same ``mounts``."""
    default, mounted = marked(binding, "default"), marked(binding, "mounted")
    expected = "mounted" if matches else "default"
    resilient = binding.resilient_client(transport=default, mounts={pattern: mounted})
    router = resilient.transport.inner
    assert (router.transport_for(binding.http.URL(url)) is mounted) is matches
    async with resilient:
        assert (await resilient.get(url)).text == expected
    async with binding.client(default, mounts={pattern: mounted}) as plain:
        assert (await plain.get(url)).text == expected


async def test_the_most_specific_mount_wins(binding: Binding) -> None:
    default, everything, host, port = (
        marked(binding, tag) for tag in ("default", "everything", "host", "port")
    )
    mounts = {
        "all://": everything,
        "https://api.example.com": host,
        "all://api.example.com:8443": port,
    }
    client = binding.resilient_client(transport=default, mounts=mounts)
    router = client.transport.inner
    url_of = binding.http.URL
    assert router.transport_for(url_of("https://other.example.com")) is everything
    assert router.transport_for(url_of("https://api.example.com")) is host
    assert router.transport_for(url_of("https://api.example.com:8443")) is port
    async with client:
        assert (await client.get("https://other.example.com")).text == "everything"
        assert (await client.get("https://api.example.com")).text == "host"
        assert (await client.get("https://api.example.com:8443")).text == "port"
    unmounted = binding.resilient_client(transport=default, mounts={"all://": None})
    assert unmounted.transport.inner.transport_for(url_of("http://a")) is default
    async with unmounted:
        assert (await unmounted.get("http://a")).text == "default"


# -- every route through the one transport: proxies from the environment -----------------


def clear_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


async def test_environment_proxies_are_read_as_httpx_reads_them(
    binding: Binding, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same table the binding's own httpx reads (``trust_env``) from the same variables."""
    httpx_reads = binding.http._utils.get_environment_proxies
    clear_proxy_environment(monkeypatch)
    monkeypatch.setenv("HTTPS_PROXY", "proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost, 10.0.0.1,.corp.example, ::1")
    assert environment_proxies() == {
        "https://": "http://proxy.internal:3128",
        "all://localhost": None,
        "all://10.0.0.1": None,
        "all://*.corp.example": None,
        "all://[::1]": None,
    }
    assert environment_proxies() == httpx_reads()
    monkeypatch.setenv("NO_PROXY", "*")
    assert environment_proxies() == {}
    assert environment_proxies() == httpx_reads()


async def test_proxies_from_the_environment_are_used_and_breakers_key_the_origin(
    binding: Binding, monkeypatch: pytest.MonkeyPatch, fault_proxy: int
) -> None:
    """``HTTP_PROXY`` is honoured as httpx would honour it, below the breaker:
    the request reaches the proxy, and the breaker is the origin's."""
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{fault_proxy}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    policy = Policy(breaker=BreakerPolicy(failure_threshold=1), retry=RetryPolicy(attempts=1))
    async with binding.resilient_client(policy=policy) as client:
        # origin.invalid never resolves: only the proxy can answer
        response = await client.get("http://origin.invalid/status/503")
        assert response.status_code == 503
        assert set(client.transport.snapshot()) == {"origin.invalid:80"}
        assert client.transport.snapshot()["origin.invalid:80"]["state"] == "open"


async def test_no_proxy_hosts_are_reached_directly(
    binding: Binding, monkeypatch: pytest.MonkeyPatch, live: LiveServer
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with binding.resilient_client() as client:
        assert (await client.get(f"{live.url}/status/200")).status_code == 200


async def test_trust_env_false_ignores_environment_proxies(
    binding: Binding, monkeypatch: pytest.MonkeyPatch, live: LiveServer
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    async with binding.resilient_client(trust_env=False) as client:
        assert (await client.get(f"{live.url}/status/200")).status_code == 200
