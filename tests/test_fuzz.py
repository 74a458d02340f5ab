"""Fuzzing with hypothesis: ``Retry-After`` values, host patterns and URL forms
never crash, and never mis-key a breaker (one authority, one breaker)."""

from __future__ import annotations

import datetime as dt
import email.utils
import ipaddress
import math

import httpx
import tenacity
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from resilient_http import Policy, ResilientTransport, RetryPolicy, StaleCache
from resilient_http._hosts import HostPattern, key_for_url
from resilient_http._retry import parse_retry_after
from resilient_http.testing import FakeClock

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = 1_700_000_000.0  # a fixed "now" for HTTP-dates

# -- Retry-After -------------------------------------------------------------------------

dates = st.datetimes(
    min_value=dt.datetime(1, 1, 2),
    max_value=dt.datetime(9999, 12, 30),
    timezones=st.just(dt.timezone.utc),
)
http_dates = dates.map(lambda d: email.utils.format_datetime(d, usegmt=True))
retry_after_values = st.one_of(
    st.text(max_size=80),
    # what latin-1 header bytes decode to
    st.text(alphabet=st.characters(max_codepoint=255), max_size=40),
    st.integers(-(10**30), 10**90).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    http_dates,
    st.tuples(http_dates, st.text(max_size=8), st.booleans()).map(
        lambda t: t[0] + t[1] if t[2] else t[1] + t[0]
    ),
    st.tuples(http_dates, st.integers(0, 28), st.text(max_size=3)).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + len(t[2]) :]  # a date with bytes flipped
    ),
    st.sampled_from(["-1", "1.5", "1e3", "inf", "NaN", "0x10", "1_000", "+5", "¹²", "٣", "²"]),
)


@FUZZ
@given(retry_after_values)
@example("²")  # latin-1 superscript two: str.isdigit() says yes, int() says no
@example("9" * 64)
@example("Fri, 31 Dec 9999 23:59:59 GMT")
@example("Mon, 01 Jan 0001 00:00:00 GMT")
def test_retry_after_never_crashes_and_is_a_finite_delay_or_none(value: str) -> None:
    for now in (None, NOW):
        delay = parse_retry_after(value, now=now)
        assert delay is None or (isinstance(delay, float) and math.isfinite(delay) and delay >= 0)


@FUZZ
@given(st.integers(0, 10**40), st.sampled_from(["", " ", "\t", "  "]))
def test_retry_after_delta_seconds_are_taken_as_is(seconds: int, pad: str) -> None:
    assert parse_retry_after(f"{pad}{seconds}{pad}") == float(seconds)


@FUZZ
@given(st.integers(1, 10**6), st.sampled_from(["-", "+"]), st.sampled_from(["", ".5", "e2"]))
def test_retry_after_signed_or_fractional_numbers_are_rejected(
    seconds: int, sign: str, tail: str
) -> None:
    assume(sign == "-" or tail)
    assert parse_retry_after(f"{sign}{seconds}{tail}") is None


@FUZZ
@given(
    st.datetimes(
        min_value=dt.datetime(1971, 1, 1),
        max_value=dt.datetime(2200, 1, 1),
        timezones=st.just(dt.timezone.utc),
    )
)
def test_retry_after_http_dates_count_from_now(when: dt.datetime) -> None:
    value = email.utils.format_datetime(when.replace(microsecond=0), usegmt=True)
    expected = max(0.0, when.replace(microsecond=0).timestamp() - NOW)
    assert parse_retry_after(value, now=NOW) == expected


latin1_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(latin1_values)
@example("²")
async def test_upstream_header_values_never_crash_the_transport(value: str) -> None:
    """Retry-After and Age arrive as raw bytes: httpx decodes them as latin-1."""
    raw = value.encode("latin-1")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/busy":
            return httpx.Response(503, headers=[(b"retry-after", raw)])
        return httpx.Response(200, headers=[(b"age", raw)], content=b"page")

    clock = FakeClock()
    transport = ResilientTransport(
        httpx.MockTransport(handler),
        policy=Policy(retry=RetryPolicy(attempts=2, wait=tenacity.wait_none())),
        stale_cache=StaleCache(),
        clock=clock,
        sleep=clock.sleep,
    )
    busy = await transport.handle_async_request(httpx.Request("GET", "http://a.example/busy"))
    assert busy.status_code == 503
    page = await transport.handle_async_request(httpx.Request("GET", "http://a.example/page"))
    assert await page.aread() == b"page"
    transport.breaker("http://a.example/").force_open()
    stale = await transport.handle_async_request(httpx.Request("GET", "http://a.example/page"))
    assert await stale.aread() == b"page"  # the stale copy, with a well-formed Age
    assert stale.headers["age"].isascii()
    assert stale.headers["age"].isdigit()


# -- host patterns ------------------------------------------------------------------------

pattern_texts = st.one_of(
    st.text(max_size=30),
    st.text(alphabet="abcAB*.:[]-_0123456789%@/ ", max_size=25),
    st.from_regex(r"\A(\*\.)?[a-zA-Z0-9.-]{0,20}(:[0-9]{0,6})?\Z"),
    st.from_regex(r"\A\[[0-9a-fA-F:.%]{0,30}\](:[0-9]{0,6})?\Z"),
    st.sampled_from([".", "..", "*.", "a..", "a:²", "a:٣", "[::1]:0", "[]", "*.*.a"]),
)


@FUZZ
@given(pattern_texts)
def test_host_patterns_parse_or_raise_value_error(text: str) -> None:
    try:
        pattern = HostPattern.parse(text)
    except ValueError as exc:
        message = str(exc)
    else:
        message = ""
    if message:
        assert "pattern" in message  # the message names what was wrong
        return
    host = pattern.host
    assert host, f"{text!r} parsed to an empty host"
    assert host == host.lower()
    assert not host.endswith(".")
    assert not any(c in host for c in "/?#@ *")
    assert pattern.port is None or 0 < pattern.port < 65536
    # normalisation is idempotent: the parsed form parses to itself
    again = HostPattern.parse(host if pattern.port is None else f"{host}:{pattern.port}")
    assert (again.host, again.port) == (host, pattern.port)


@FUZZ
@given(st.one_of(st.none(), st.integers(), st.binary(max_size=10), st.lists(st.text(max_size=3))))
def test_host_patterns_of_the_wrong_type_raise_type_error(value: object) -> None:
    try:
        HostPattern.parse(value)
    except TypeError:
        return
    raise AssertionError(f"{value!r} was accepted as a host pattern")


# -- URL forms and breaker keys ---------------------------------------------------------------

SECRET_USER, SECRET_PASS, SECRET_QUERY = "hunter2user", "hunter2pass", "hunter2query"

labels = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?\Z")
dns_hosts = st.lists(labels, min_size=1, max_size=4).map(".".join)
idna_hosts = st.tuples(
    st.sampled_from(["bücher", "münchen", "пример", "例え", "straße", "ñandú"]),
    st.sampled_from(["example", "com", "xn--p1ai"]),
).map(".".join)
ipv4_hosts = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6_addresses = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)


@st.composite
def authorities(draw: st.DrawFn) -> tuple[str, str, int | None]:
    """(scheme, host as written in a URL, explicit port or None)."""
    scheme = draw(st.sampled_from(["http", "https"]))
    kind = draw(st.sampled_from(["dns", "idna", "ipv4", "ipv6"]))
    if kind == "ipv6":
        address = draw(ipv6_addresses)
        host = f"[{draw(st.sampled_from([address.compressed, address.exploded]))}]"
    else:
        host = draw({"dns": dns_hosts, "idna": idna_hosts, "ipv4": ipv4_hosts}[kind])
    port = draw(st.one_of(st.none(), st.integers(1, 65535)))
    return scheme, host, port


def spell(
    scheme: str,
    host: str,
    port: int | None,
    data: st.DataObject,
) -> str:
    """Another spelling of the same authority: case, trailing dot, explicit
    default port, userinfo, IPv6 compression, IDNA form; any path and query."""
    if host.startswith("["):
        address = ipaddress.IPv6Address(host[1:-1])
        form = data.draw(st.sampled_from([address.compressed, address.exploded]))
        host = f"[{form.upper() if data.draw(st.booleans()) else form}]"
    else:
        if data.draw(st.booleans()):
            # per character ("ß".upper() is "SS": another name, not another spelling)
            host = "".join(
                c.upper() if len(c.upper()) == 1 and data.draw(st.booleans()) else c for c in host
            )
        if data.draw(st.booleans()) and not host.replace(".", "").isdigit():
            host = httpx.URL(f"http://{host}/").raw_host.decode()  # the punycode form
        if data.draw(st.booleans()):
            host += "."
    if port is None and data.draw(st.booleans()):
        port = 443 if scheme == "https" else 80  # the default, written out
    userinfo = data.draw(st.sampled_from(["", f"{SECRET_USER}@", f"{SECRET_USER}:{SECRET_PASS}@"]))
    path = data.draw(st.sampled_from(["", "/", "/a/b", "/x;y"]))
    query = data.draw(st.sampled_from(["", f"?token={SECRET_QUERY}", "?a=1&b=2"]))
    authority = f"{userinfo}{host}" + (f":{port}" if port is not None else "")
    return f"{scheme}://{authority}{path}{query}"


def _url(text: str) -> httpx.URL:
    try:
        return httpx.URL(text)
    except httpx.InvalidURL:
        assume(False)
        raise


@FUZZ
@given(authorities(), st.data())
def test_one_authority_one_key_and_the_key_keeps_no_secrets(
    authority: tuple[str, str, int | None], data: st.DataObject
) -> None:
    scheme, host, port = authority
    first = _url(spell(scheme, host, port, data))
    second = _url(spell(scheme, host, port, data))
    key = key_for_url(first)
    assert key is not None
    assert key == key_for_url(second), (str(first), str(second))
    key_host, _, key_port = key.rpartition(":")
    assert key_host
    assert key_port.isdigit()
    assert key_host == key_host.lower()
    assert not key_host.endswith(".")
    for secret in (SECRET_USER, SECRET_PASS, SECRET_QUERY, "@", "/", "?", "#"):
        assert secret not in key
    default = 443 if scheme == "https" else 80
    assert int(key_port) == (port if port is not None else default)


@FUZZ
@given(authorities(), st.integers(1, 65535), st.data())
def test_another_port_is_another_key(
    authority: tuple[str, str, int | None], other: int, data: st.DataObject
) -> None:
    scheme, host, port = authority
    default = 443 if scheme == "https" else 80
    assume(other != (port if port is not None else default))
    first = _url(spell(scheme, host, port, data))
    second = _url(spell(scheme, host, other, data))
    assert key_for_url(first) != key_for_url(second)


@FUZZ
@given(
    st.sampled_from(["http", "https", "ws", "wss", "ftp", "file", "HTTP"]),
    st.text(alphabet="ab.[]:@%19-", max_size=12),
    st.text(max_size=10),
)
def test_odd_urls_key_or_opt_out_but_never_crash(scheme: str, authority: str, rest: str) -> None:
    url = _url(f"{scheme}://{authority}/{rest}")
    key = key_for_url(url)
    if key is not None:
        key_host, _, key_port = key.rpartition(":")
        assert key_host, f"{url!r} keyed on an empty host"
        assert key_port.isdigit()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(authorities(), st.data())
async def test_every_spelling_of_a_host_reaches_one_breaker(
    authority: tuple[str, str, int | None], data: st.DataObject
) -> None:
    scheme, host, port = authority
    urls = [_url(spell(scheme, host, port, data)) for _ in range(4)]
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(503)),
        policy=Policy(retry=RetryPolicy(attempts=1)),
    )
    breaker = transport.breaker(urls[0])
    for url in urls:
        response = await transport.handle_async_request(httpx.Request("GET", url))
        await response.aclose()
        assert transport.breaker(url) is breaker
    assert list(transport.snapshot()) == [breaker.key]
    assert breaker.failure_count == len(urls)
