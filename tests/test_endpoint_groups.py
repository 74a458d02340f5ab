"""Endpoint groups, the sans-IO planner (README, "Several endpoints per
service"): how an endpoint URL becomes a breaker key and a Host header, which
endpoint a call, its retry or its hedge goes to, when the logical host
rejects, and the ejection cap. The end-to-end behaviour, on every binding, is
in tests/contract/test_endpoints.py."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from resilient_http import BreakerPolicy, CircuitState
from resilient_http._breaker import Breaker
from resilient_http._endpoints import Endpoint, parse_endpoint
from resilient_http._groups import Group
from resilient_http._hosts import shown
from resilient_http.testing import FakeClock

# -- parse_endpoint ----------------------------------------------------------------------


def endpoint(scheme: str, host: str, port: int, authority: str) -> Endpoint:
    return Endpoint(scheme, host, port, f"{host}:{port}", authority)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://a.example.com", endpoint("https", "a.example.com", 443, "a.example.com")),
        ("https://A.Example.COM/", endpoint("https", "a.example.com", 443, "a.example.com")),
        ("http://10.0.0.7:8080", endpoint("http", "10.0.0.7", 8080, "10.0.0.7:8080")),
        ("http://b.example.com", endpoint("http", "b.example.com", 80, "b.example.com")),
        # the scheme's own port, spelled out, is left out of the Host header
        ("https://a.example.com:443", endpoint("https", "a.example.com", 443, "a.example.com")),
        ("http://b.example.com:443", endpoint("http", "b.example.com", 443, "b.example.com:443")),
        ("http://[::1]:8080", endpoint("http", "::1", 8080, "[::1]:8080")),
        ("http://[::1]", endpoint("http", "::1", 80, "[::1]")),
    ],
)
def test_an_endpoint_is_its_scheme_host_port_key_and_host_header(
    text: str, expected: Endpoint
) -> None:
    assert parse_endpoint(text) == expected


NOT_HTTP = (
    "must be an absolute http(s) URL with a host, "
    "such as 'https://a.example.com' or 'http://10.0.0.7:8080'"
)
NOT_BARE = (
    "must name a scheme, host and port only "
    "(no path, query, fragment or credentials): the request keeps its own"
)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("ftp://a.example.com", NOT_HTTP),
        ("/relative", NOT_HTTP),
        ("https://a.example.com/v1", NOT_BARE),
        ("https://a.example.com/?x=1", NOT_BARE),
        ("https://a.example.com/#top", NOT_BARE),
        ("https://user:pw@a.example.com", NOT_BARE),
    ],
)
def test_a_bad_endpoint_is_refused_saying_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_endpoint(text)
    assert str(raised.value) == f"Policy.endpoints: {shown(text)!r} {why}"


def test_an_endpoint_that_is_no_url_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError) as raised:
        parse_endpoint("http://a.example.com:port")
    message = str(raised.value)
    assert message.startswith("Policy.endpoints: 'http://a.example.com:port' is not a URL (")


def test_an_endpoint_that_is_not_a_string_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match=r"Policy\.endpoints must be URL strings, got int"):
        parse_endpoint(8080)


# -- Group -------------------------------------------------------------------------------


@dataclass(eq=False)
class Member:
    name: str
    breaker: Breaker


def make_group(
    clock: FakeClock, *names: str, balance: str = "ordered", min_eligible: int = 0
) -> tuple[Group[Member], list[Member]]:
    policy = BreakerPolicy(failure_threshold=1, recovery_timeout=10)
    members = [Member(name, Breaker(f"{name}:80", policy, clock=clock)) for name in names]
    endpoints = [parse_endpoint(f"http://{name}") for name in names]
    return Group("svc:80", endpoints, members, balance, min_eligible), members


def admitted(group: Group[Member], avoid: Member | None = None) -> str | None:
    found = group.admit(avoid)
    if found is None:
        return None
    member, ticket = found
    member.breaker.on_ignored(ticket)
    return member.name


def trip(member: Member) -> None:
    ticket = member.breaker.admit()
    assert ticket is not None
    member.breaker.on_failure(ticket)
    assert member.breaker.is_rejecting()


def test_ordered_sends_every_call_to_the_first_endpoint_that_admits(clock: FakeClock) -> None:
    group, (a, b, _c) = make_group(clock, "a", "b", "c")
    assert [admitted(group) for _ in range(3)] == ["a", "a", "a"]
    trip(a)
    assert [admitted(group) for _ in range(3)] == ["b", "b", "b"]
    trip(b)
    assert admitted(group) == "c"


def test_round_robin_takes_turns_and_skips_a_rejecting_endpoint(clock: FakeClock) -> None:
    group, (_a, b, _c) = make_group(clock, "a", "b", "c", balance="round_robin")
    assert [admitted(group) for _ in range(4)] == ["a", "b", "c", "a"]
    trip(b)
    assert [admitted(group) for _ in range(3)] == ["c", "c", "a"]  # b's turn goes to c


def test_a_retry_or_hedge_goes_to_another_endpoint_first(clock: FakeClock) -> None:
    group, (a, b, c) = make_group(clock, "a", "b", "c")
    assert admitted(group, avoid=a) == "b"
    assert admitted(group, avoid=b) == "a"
    trip(b)
    trip(c)
    assert admitted(group, avoid=a) == "a"  # the one it follows, when no other admits


def test_avoiding_an_endpoint_of_another_group_changes_nothing(clock: FakeClock) -> None:
    group, _ = make_group(clock, "a", "b")
    _, (stranger,) = make_group(clock, "z")
    assert admitted(group, avoid=stranger) == "a"


def test_a_group_of_one_endpoint_sends_the_retry_to_it(clock: FakeClock) -> None:
    group, (a,) = make_group(clock, "a")
    assert admitted(group, avoid=a) == "a"


def test_the_logical_host_rejects_only_when_every_endpoint_does(clock: FakeClock) -> None:
    group, (a, b) = make_group(clock, "a", "b")
    assert not group.is_rejecting()
    assert group.retry_after() == 0.0
    trip(a)
    assert not group.is_rejecting()
    assert group.retry_after() == 0.0  # b takes calls now
    clock.advance(4)
    trip(b)
    assert group.is_rejecting()
    assert admitted(group) is None
    assert group.retry_after() == pytest.approx(6.0)  # a's circuit half-opens first
    snapshot = group.snapshot()
    assert snapshot == {
        "state": "open",
        "retry_after": 6.0,
        "endpoints": ["a:80", "b:80"],
        "balance": "ordered",
    }


def test_the_snapshot_of_a_taking_group_reads_closed(clock: FakeClock) -> None:
    group, (a, _b) = make_group(clock, "a", "b", balance="round_robin")
    trip(a)
    assert group.snapshot() == {
        "state": CircuitState.CLOSED.value,
        "retry_after": 0.0,
        "endpoints": ["a:80", "b:80"],
        "balance": "round_robin",
    }


def test_the_snapshot_rounds_retry_after_to_milliseconds(clock: FakeClock) -> None:
    group, (a,) = make_group(clock, "a")
    trip(a)
    clock.advance(0.12345)
    assert group.snapshot()["retry_after"] == 9.877


def test_a_group_held_open_by_hand_has_no_retry_after(clock: FakeClock) -> None:
    group, (a, b) = make_group(clock, "a", "b")
    a.breaker.force_open()
    b.breaker.force_open()
    assert group.retry_after() == math.inf
    snapshot = group.snapshot()
    assert snapshot["state"] == "open"
    assert snapshot["retry_after"] is None


def test_without_a_cap_every_endpoint_may_be_ejected(clock: FakeClock) -> None:
    group, (a, b) = make_group(clock, "a", "b", min_eligible=0)
    trip(b)
    trip(a)
    assert not group.keep(a.breaker)


def test_the_cap_keeps_an_endpoint_while_too_few_others_take_calls(clock: FakeClock) -> None:
    group, (a, b, c) = make_group(clock, "a", "b", "c", min_eligible=1)
    trip(a)
    assert not group.keep(a.breaker)  # b and c still take calls
    trip(b)
    assert not group.keep(b.breaker)  # c does
    trip(c)
    assert group.keep(c.breaker)  # the last one stays in rotation


def test_the_cap_counts_others_exactly(clock: FakeClock) -> None:
    group, (a, b, _c) = make_group(clock, "a", "b", "c", min_eligible=2)
    trip(a)
    assert not group.keep(a.breaker)  # two others take calls: enough
    trip(b)
    assert group.keep(b.breaker)  # one other: fewer than two


def test_an_endpoint_forced_open_by_hand_is_never_kept(clock: FakeClock) -> None:
    group, (a, b) = make_group(clock, "a", "b", min_eligible=1)
    trip(b)
    a.breaker.force_open()
    assert not group.keep(a.breaker)


@pytest.mark.parametrize("port", [1, 65535])
def test_the_first_and_last_ports_are_valid(port: int) -> None:
    assert parse_endpoint(f"http://a.example.com:{port}").port == port


@pytest.mark.parametrize("port", [0, 65536, 70000])
def test_a_port_outside_1_to_65535_is_refused(port: int) -> None:
    text = f"http://a.example.com:{port}"
    with pytest.raises(ValueError) as raised:
        parse_endpoint(text)
    assert str(raised.value) == f"Policy.endpoints: {shown(text)!r} has an invalid port {port}"


@pytest.mark.parametrize(
    "text", ["https://alice:s3cret@a.example.com", "https://a.example.com/v1?token=s3cret", 8080]
)
def test_a_refused_endpoint_is_named_without_its_secrets(text: object) -> None:
    """README, "Logging and privacy": the error names the endpoint, not its
    userinfo, path or query."""
    with pytest.raises((ValueError, TypeError)) as raised:
        parse_endpoint(text)
    for secret in ("alice", "s3cret", "/v1", "token"):
        assert secret not in str(raised.value)
