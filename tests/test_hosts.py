"""Breaker keys (one breaker per normalised authority) and host-pattern precedence."""

from __future__ import annotations

import httpx
import pytest
import tenacity

from resilient_http import BreakerPolicy, Policy, ResilientTransport, RetryPolicy
from resilient_http._hosts import HostPattern, PatternTable, key_for_url, shown
from resilient_http.testing import FakeClock


def transport_with(
    clock: FakeClock,
    hosts: dict[str, Policy] | None = None,
    policy: Policy | None = None,
    status: int = 200,
) -> tuple[ResilientTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status)

    transport = ResilientTransport(
        httpx.MockTransport(handler),
        policy=policy,
        hosts=hosts,
        clock=clock,
        sleep=clock.sleep,
    )
    return transport, seen


def threshold(n: int) -> Policy:
    """A policy tagged by its failure threshold, without retries."""
    return Policy(
        breaker=BreakerPolicy(failure_threshold=n), retry=RetryPolicy(attempts=1, budget=None)
    )


# -- breaker keys --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://API.example.com/", "api.example.com:443"),
        ("https://api.example.com:443/x", "api.example.com:443"),
        ("https://api.example.com./x", "api.example.com:443"),
        ("http://api.example.com/", "api.example.com:80"),
        ("http://api.example.com:80/", "api.example.com:80"),
        ("https://user:secret@api.example.com/x?token=abc#frag", "api.example.com:443"),
        ("http://a:8080/", "a:8080"),
        ("http://[::1]:8080/", "[::1]:8080"),
        ("http://[::1]/", "[::1]:80"),
        ("http://[2001:DB8::1]/", "[2001:db8::1]:80"),
        ("https://bücher.example/", "xn--bcher-kva.example:443"),
        ("https://BÜCHER.example./", "xn--bcher-kva.example:443"),
        ("http://127.0.0.1:9000/", "127.0.0.1:9000"),
    ],
)
async def test_requests_are_keyed_by_normalised_authority(
    clock: FakeClock, url: str, key: str
) -> None:
    transport, _ = transport_with(clock)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get(url)
    assert list(transport.snapshot()) == [key]


async def test_equivalent_urls_share_one_breaker(clock: FakeClock) -> None:
    transport, _ = transport_with(clock, policy=threshold(2), status=503)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://API.example.com/")
        await client.get("https://api.example.com:443/x")
    assert list(transport.snapshot()) == ["api.example.com:443"]
    assert transport.breaker("https://api.example.com/").state == "open"


async def test_different_ports_get_different_breakers(clock: FakeClock) -> None:
    transport, seen = transport_with(clock, policy=threshold(1), status=503)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("http://a:8080/")
        response = await client.get("http://a:9090/")  # not rejected: a different breaker
    assert response.status_code == 503
    assert len(seen) == 2
    assert sorted(transport.snapshot()) == ["a:8080", "a:9090"]


async def test_http_and_https_default_ports_differ(clock: FakeClock) -> None:
    transport, _ = transport_with(clock)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("http://api.example.com/")
        await client.get("https://api.example.com/")
    assert sorted(transport.snapshot()) == ["api.example.com:443", "api.example.com:80"]


async def test_userinfo_path_and_query_never_reach_the_key(clock: FakeClock) -> None:
    transport, _ = transport_with(clock)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://alice:hunter2@api.example.com/private/path?token=s3cret")
    [key] = transport.snapshot()
    for secret in ("alice", "hunter2", "private", "token", "s3cret"):
        assert secret not in key


# -- host patterns -------------------------------------------------------------------


def test_pattern_precedence_host_port_then_host_then_longest_wildcard_then_default(
    clock: FakeClock,
) -> None:
    transport, _ = transport_with(
        clock,
        policy=threshold(1),
        hosts={
            "*.example.com": threshold(2),
            "*.internal.example.com": threshold(3),
            "api.internal.example.com": threshold(4),
            "api.internal.example.com:8443": threshold(5),
        },
    )

    def tag(url: str) -> int:
        return transport.breaker(url).policy.failure_threshold

    assert tag("https://api.internal.example.com:8443/") == 5
    assert tag("https://api.internal.example.com/") == 4
    assert tag("http://api.internal.example.com:8080/") == 4
    assert tag("https://db.internal.example.com/") == 3
    assert tag("https://a.b.internal.example.com/") == 3
    assert tag("https://www.example.com/") == 2
    assert tag("https://internal.example.com/") == 2  # "*.internal..." needs a subdomain
    assert tag("https://example.org/") == 1


def test_wildcard_does_not_match_the_bare_domain(clock: FakeClock) -> None:
    transport, _ = transport_with(clock, policy=threshold(1), hosts={"*.example.com": threshold(7)})
    assert transport.breaker("https://example.com/").policy.failure_threshold == 1
    assert transport.breaker("https://x.example.com/").policy.failure_threshold == 7
    assert transport.breaker("https://x.y.example.com/").policy.failure_threshold == 7
    # a suffix match must be on a label boundary
    assert transport.breaker("https://badexample.com/").policy.failure_threshold == 1


def test_host_pattern_matches_any_port_and_host_port_only_that_port(clock: FakeClock) -> None:
    transport, _ = transport_with(
        clock,
        policy=threshold(1),
        hosts={"api.example.com": threshold(2), "other.example.com:8443": threshold(3)},
    )
    assert transport.breaker("http://api.example.com/").policy.failure_threshold == 2
    assert transport.breaker("https://api.example.com:9999/").policy.failure_threshold == 2
    assert transport.breaker("https://other.example.com:8443/").policy.failure_threshold == 3
    assert transport.breaker("https://other.example.com/").policy.failure_threshold == 1


def test_wildcard_with_port_beats_same_wildcard_without(clock: FakeClock) -> None:
    transport, _ = transport_with(
        clock, hosts={"*.example.com": threshold(2), "*.example.com:8443": threshold(3)}
    )
    assert transport.breaker("https://a.example.com:8443/").policy.failure_threshold == 3
    assert transport.breaker("https://a.example.com/").policy.failure_threshold == 2


def test_patterns_are_normalised_like_urls(clock: FakeClock) -> None:
    transport, _ = transport_with(
        clock,
        hosts={
            "API.Example.COM": threshold(2),
            "bücher.example": threshold(3),
            "[::1]:8080": threshold(4),
            "trailing.example.com.": threshold(5),
        },
    )
    assert transport.breaker("https://api.example.com/").policy.failure_threshold == 2
    assert transport.breaker("https://BÜCHER.example/").policy.failure_threshold == 3
    assert transport.breaker("http://[::1]:8080/").policy.failure_threshold == 4
    assert transport.breaker("https://trailing.example.com/").policy.failure_threshold == 5


async def test_host_policy_drives_the_requests_to_that_host(clock: FakeClock) -> None:
    transport, seen = transport_with(
        clock,
        policy=threshold(5),
        hosts={"payments.example.com": threshold(2)},
        status=500,
    )
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(2):
            await client.post("https://payments.example.com/charge")
            await client.post("https://shop.example.com/cart")
        assert transport.breaker("payments.example.com").state == "open"
        assert transport.breaker("shop.example.com").state == "closed"
        with pytest.raises(httpx.TransportError):
            await client.post("https://payments.example.com/charge")
    assert len(seen) == 4


async def test_host_retry_policy_applies_per_pattern(clock: FakeClock) -> None:
    retry5 = RetryPolicy(attempts=5, wait=tenacity.wait_none(), budget=None)
    transport, seen = transport_with(
        clock,
        policy=Policy(
            breaker=BreakerPolicy(failure_threshold=100),
            retry=RetryPolicy(attempts=1, budget=None),
        ),
        hosts={
            "*.internal.example.com": Policy(
                breaker=BreakerPolicy(failure_threshold=100), retry=retry5
            )
        },
        status=503,
    )
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://inventory.internal.example.com/")
        assert len(seen) == 5
        await client.get("https://public.example.com/")
        assert len(seen) == 6


# -- transport.breaker(host_or_url) --------------------------------------------------


async def test_breaker_lookup_forms_return_the_breaker_requests_use(clock: FakeClock) -> None:
    transport, _ = transport_with(clock, status=503, policy=threshold(1))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://api.example.com/v1/items?page=2")
    used = transport.breaker("https://api.example.com/")
    assert used.state == "open"
    assert transport.breaker("api.example.com") is used
    assert transport.breaker("API.example.com:443") is used
    assert transport.breaker("https://api.example.com:443/other") is used
    assert transport.breaker(httpx.URL("https://api.example.com/x?y=1")) is used


def test_breaker_is_created_on_demand_and_kept(clock: FakeClock) -> None:
    transport, _ = transport_with(clock)
    assert transport.snapshot() == {}
    breaker = transport.breaker("api.example.com:8443")
    assert breaker.key == "api.example.com:8443"
    assert breaker.state == "closed"
    assert list(transport.snapshot()) == ["api.example.com:8443"]
    assert transport.breaker("api.example.com:8443") is breaker


def test_bare_host_defaults_to_443_or_its_only_live_port(clock: FakeClock) -> None:
    transport, _ = transport_with(clock)
    assert transport.breaker("fresh.example.com").key == "fresh.example.com:443"
    on_8080 = transport.breaker("http://a.example.com:8080/")
    assert transport.breaker("a.example.com") is on_8080


def test_bare_host_with_breakers_on_several_ports_is_ambiguous(clock: FakeClock) -> None:
    transport, _ = transport_with(clock)
    transport.breaker("http://a.example.com:8080/")
    transport.breaker("http://a.example.com:9090/")
    with pytest.raises(ValueError, match=r"a\.example\.com"):
        transport.breaker("a.example.com")


@pytest.mark.parametrize(
    "value", ["*.example.com", "http:///no-host", "", "api.example.com/path", "a:b:c"]
)
def test_breaker_rejects_values_that_name_no_single_host(clock: FakeClock, value: str) -> None:
    transport, _ = transport_with(clock)
    with pytest.raises(ValueError):
        transport.breaker(value)
    assert transport.snapshot() == {}


def test_breaker_rejects_non_strings(clock: FakeClock) -> None:
    transport, _ = transport_with(clock)
    with pytest.raises(TypeError, match="42"):
        transport.breaker(42)  # type: ignore[arg-type]


async def test_manual_controls_through_the_transport_affect_requests(clock: FakeClock) -> None:
    transport, seen = transport_with(clock)
    breaker = transport.breaker("api.example.com")
    async with httpx.AsyncClient(transport=transport) as client:
        breaker.force_open()
        assert transport.snapshot()["api.example.com:443"]["state"] == "open"
        with pytest.raises(httpx.TransportError):
            await client.get("https://api.example.com/")
        assert seen == []
        breaker.reset()
        assert transport.snapshot()["api.example.com:443"]["state"] == "closed"
        assert (await client.get("https://api.example.com/")).status_code == 200
    assert len(seen) == 1


# -- keys and patterns, sans-IO ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("wss://api.example.com/feed", "api.example.com:443"),
        ("ws://api.example.com/feed", "api.example.com:80"),
        ("http://[0:0::1]/", "[::1]:80"),  # one spelling per address
        ("http://[::FFFF:1.2.3.4]:81/", "[::ffff:102:304]:81"),
        ("http://h:1/", "h:1"),
        ("http://h:65535/", "h:65535"),
    ],
)
def test_the_key_of_each_scheme_and_port(url: str, key: str) -> None:
    assert key_for_url(httpx.URL(url)) == key


@pytest.mark.parametrize(
    "url",
    ["ftp://h/", "ftp://h:21/", "http://./", "http://h:0/", "http://h:-1/", "http://h:65536/"],
)
def test_a_url_with_no_usable_authority_has_no_key(url: str) -> None:
    assert key_for_url(httpx.URL(url)) is None


@pytest.mark.parametrize(
    ("text", "host", "port", "wildcard"),
    [
        ("X.EXAMPLE.com", "x.example.com", None, False),
        ("*.example.com:1", "example.com", 1, True),
        ("api.example.com:65535", "api.example.com", 65535, False),
        ("[::1]:8080", "[::1]", 8080, False),
        ("[0:0::1]", "[::1]", None, False),
    ],
)
def test_a_pattern_is_parsed_into_its_parts(
    text: str, host: str, port: int | None, wildcard: bool
) -> None:
    assert HostPattern.parse(text) == HostPattern(text, host, port, wildcard)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("api.example.com:0", "hosts pattern 'api.example.com:0' has an invalid port '0'"),
        (
            "api.example.com:65536",
            "hosts pattern 'api.example.com:65536' has an invalid port '65536'",
        ),
        ("[::1]:x", "hosts pattern '[::1]:x' has an invalid port 'x'"),
        ("[::1", "hosts pattern '[::1' is malformed: unclosed '['"),
        ("[::1]]", "hosts pattern '[::1]]' is malformed"),
        ("api..example.com", "hosts pattern 'api..example.com' is malformed: empty label"),
        (
            ".example.com",
            "hosts pattern '.example.com' is malformed: empty label;"
            " for subdomains write '*.example.com'",
        ),
        ("[]", "hosts pattern '[]': invalid host '[]'"),
        ("\u3002", "hosts pattern '\u3002': invalid host '\u3002'"),
    ],
)
def test_a_malformed_pattern_is_refused_saying_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        ResilientTransport(hosts={text: Policy()})
    assert str(raised.value) == message


def test_a_pattern_that_is_not_a_string_is_named_with_its_type() -> None:
    with pytest.raises(TypeError) as raised:
        ResilientTransport(hosts={42: Policy()})  # type: ignore[dict-item]
    assert str(raised.value) == "hosts pattern must be a str, got int: 42"


def test_an_empty_table_is_false_and_any_entry_makes_it_true() -> None:
    assert not PatternTable[int]()
    for text in ("api.example.com", "api.example.com:443", "*.example.com"):
        assert PatternTable([(HostPattern.parse(text), 1)])


@pytest.mark.parametrize(
    ("given", "quoted"),
    [
        ("api.example.com", "api.example.com"),
        ("api.example.com:8443", "api.example.com:8443"),
        ("*.example.com", "*.example.com"),
        ("https://a.example.com", "https://a.example.com"),
        ("https://alice:s3cret@a.example.com", "https://...@a.example.com"),
        ("alice@a.example.com", "...@a.example.com"),
        ("a:b@c@a.example.com:81", "...@a.example.com:81"),
        ("https://a.example.com/?token=s3cret", "https://a.example.com..."),
        ("https://a.example.com?token=s3cret", "https://a.example.com..."),
        ("https://a.example.com#s3cret", "https://a.example.com..."),
        ("https://a.example.com/v1/items", "https://a.example.com..."),
        ("https://u:p@a.example.com/p?q#f", "https://...@a.example.com..."),
        ("a.example.com/x@y?z", "a.example.com..."),
        ("/relative?token=s3cret", "..."),
        ("https://a.example.com/?next=http://b.example.com", "https://a.example.com..."),
        ("https://WWW.EXAMPLE.COM/x", "https://WWW.EXAMPLE.COM..."),
        ("", ""),
    ],
)
def test_errors_quote_what_was_given_without_userinfo_path_or_query(
    given: str, quoted: str
) -> None:
    """README, "Logging and privacy": no URL path, query string or userinfo in
    an exception message, also when the value is your own configuration."""
    assert shown(given) == quoted


@pytest.mark.parametrize(
    "given",
    ["alice:s3cret@a.example.com", "a.example.com/v1?token=s3cret", "https://a.example.com#s3cret"],
)
def test_a_malformed_pattern_with_secrets_is_refused_without_them(given: str) -> None:
    with pytest.raises(ValueError) as raised:
        HostPattern.parse(given, what="hosts pattern")
    for secret in ("alice", "s3cret", "/v1", "token"):
        assert secret not in str(raised.value)
    assert str(raised.value) == (
        f"hosts pattern {shown(given)!r} is malformed: expected 'host', 'host:port' or '*.domain'"
    )
