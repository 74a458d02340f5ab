"""Each privacy and correctness guard of the stale cache, tested on its own
(README, "Stale-while-open"): where the cache decides what to store, where it
decides what to serve, and how it counts its bytes. The end-to-end tests check
them together; these fail when any one guard alone is removed."""

from __future__ import annotations

import httpx
import pytest

from resilient_http import StaleCache

URL = "https://api.example.com/items?page=1"


def get(url: str = URL, /, **headers: str) -> httpx.Request:
    return httpx.Request("GET", url, headers=headers)


def ok(status: int = 200, /, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, content=b"body")


#: Each reason, alone, not to store an answer.
NOT_STORED = [
    (get(authorization="Bearer x"), ok(), "an authenticated request"),
    (get(cookie="session=1"), ok(), "a request with cookies"),
    (get(range="bytes=0-1"), ok(), "a range request"),
    (get(**{"cache-control": "no-store"}), ok(), "the request says no-store"),
    (get(), ok(206), "a partial answer"),
    (get(), ok(500), "not a 2xx"),
    (get(), ok(**{"set-cookie": "a=1"}), "the answer sets a cookie"),
    (get(), ok(vary="*"), "Vary: *"),
    (get(), ok(**{"cache-control": "no-store"}), "the answer says no-store"),
    (get(), ok(**{"cache-control": "private, max-age=60"}), "the answer is private"),
    (get(), ok(**{"content-length": "999999"}), "announced larger than an entry"),
    (httpx.Request("POST", URL), ok(), "not a GET"),
]


@pytest.mark.parametrize(("request_", "response", "why"), NOT_STORED)
def test_each_reason_not_to_store_holds_on_its_own(
    request_: httpx.Request, response: httpx.Response, why: str
) -> None:
    assert not StaleCache(max_entry_bytes=1000).storable(request_, response), why


@pytest.mark.parametrize(("request_", "response", "why"), NOT_STORED)
def test_an_answer_kept_in_memory_is_judged_the_same(
    request_: httpx.Request, response: httpx.Response, why: str
) -> None:
    cache = StaleCache(max_entry_bytes=1000)
    cache.keep(request_, response, b"body", now=0.0)
    assert len(cache) == 0, why
    cache.keep(get(), ok(vary="accept"), b"body", now=0.0)
    assert cache.find(get(accept="a"), now=1.0) is None  # what it varies on is kept too
    assert cache.find(get(), now=1.0) is not None


def test_a_plain_answer_is_storable() -> None:
    assert StaleCache().storable(get(), ok(**{"cache-control": "max-age=60"}))


def stored(cache: StaleCache, request: httpx.Request | None = None, **headers: str) -> None:
    cache.store(request or get(), ok(**headers), b"body", now=0.0)


@pytest.mark.parametrize(
    "asking", [get(authorization="Bearer x"), get(cookie="session=1"), httpx.Request("POST", URL)]
)
def test_the_lookup_never_serves_a_private_or_unsafe_request_on_its_own(
    asking: httpx.Request,
) -> None:
    """Even with an entry in place (stored past the store-side guards), the
    lookup refuses an authenticated, cookie-carrying or non-GET request."""
    cache = StaleCache()
    stored(cache)
    assert cache.lookup(get(), 1.0) is not None
    assert cache.lookup(asking, 1.0) is None


def test_the_lookup_honours_vary() -> None:
    cache = StaleCache()
    stored(cache, get(**{"accept-language": "fr"}), vary="Accept-Language")
    assert cache.lookup(get(**{"accept-language": "fr"}), 1.0) is not None
    assert cache.lookup(get(**{"accept-language": "de"}), 1.0) is None


def test_the_lookup_refuses_an_entry_past_max_age() -> None:
    cache = StaleCache(max_age=10)
    stored(cache)
    assert cache.lookup(get(), 10.0) is not None
    assert cache.lookup(get(), 10.5) is None
    assert len(cache) == 0
    assert cache.total_bytes == 0


def test_the_byte_count_follows_every_store_replacement_and_eviction() -> None:
    cache = StaleCache(max_entries=2)
    cache.store(get("https://a.example.com/"), ok(), b"12345", now=0.0)
    assert cache.total_bytes == 5
    cache.store(get("https://a.example.com/"), ok(), b"123", now=0.0)  # replaced
    assert cache.total_bytes == 3
    cache.store(get("https://b.example.com/"), ok(), b"1234", now=0.0)
    assert cache.total_bytes == 7
    cache.store(get("https://c.example.com/"), ok(), b"12", now=0.0)  # a.example.com goes
    assert (len(cache), cache.total_bytes) == (2, 6)
    cache.clear()
    assert (len(cache), cache.total_bytes) == (0, 0)


def test_the_total_byte_bound_evicts_the_oldest() -> None:
    cache = StaleCache(max_total_bytes=8)
    cache.store(get("https://a.example.com/"), ok(), b"12345", now=0.0)
    cache.store(get("https://b.example.com/"), ok(), b"12345", now=0.0)
    assert len(cache) == 1
    assert cache.total_bytes == 5
    assert cache.lookup(get("https://b.example.com/"), 0.0) is not None


def test_an_entry_larger_than_max_entry_bytes_is_never_stored() -> None:
    cache = StaleCache(max_entry_bytes=4)
    cache.store(get(), ok(), b"12345", now=0.0)
    assert (len(cache), cache.total_bytes) == (0, 0)


def test_a_served_copy_cannot_change_the_entry() -> None:
    cache = StaleCache()
    stored(cache, etag="v1")
    first = cache.lookup(get(), 3.0)
    assert first is not None
    assert first.headers["age"] == "3"
    first.headers["etag"] = "changed"
    again = cache.lookup(get(), 4.0)
    assert again is not None
    assert again.headers["etag"] == "v1"


@pytest.mark.parametrize(
    "response",
    [
        ok(199),
        ok(300),
        ok(304),
        ok(**{"cache-control": 'private="x-user"'}),  # private, whatever follows its "="
        ok(**{"cache-control": "max-age=60, Private"}),
        ok(**{"cache-control": "no-store=1=2"}),
        ok(**{"cache-control": "public", "Cache-Control": "no-store"}),  # any of its lines
        ok(vary="Accept, *"),
    ],
)
def test_more_answers_that_are_never_stored(response: httpx.Response) -> None:
    assert not StaleCache().storable(get(), response)


@pytest.mark.parametrize("status", [200, 203, 204, 299])
def test_every_2xx_but_206_is_storable(status: int) -> None:
    assert StaleCache().storable(get(), ok(status))


def test_a_request_no_store_among_other_directives_is_honoured() -> None:
    assert not StaleCache().storable(get(**{"cache-control": "max-age=0, No-Store"}), ok())


@pytest.mark.parametrize("value", [" no-store", ",no-store", " private", ",private"])
def test_a_directive_anywhere_in_the_value_counts(value: str) -> None:
    """Wherever the word sits (first, after a space or an empty directive), the
    directive is found."""
    cache = StaleCache()
    assert not cache.storable(get(), ok(**{"cache-control": value}))
    if "no-store" in value:
        assert not cache.storable(get(**{"cache-control": value}), ok())


def test_an_answer_without_content_length_is_storable_and_bounded_by_its_body() -> None:
    cache = StaleCache(max_entry_bytes=4)
    streamed = httpx.Response(200, stream=httpx.ByteStream(b"1234"))
    assert "content-length" not in streamed.headers
    assert cache.storable(get(), streamed)
    cache.store(get(), streamed, b"1234", now=0.0)
    assert (len(cache), cache.total_bytes) == (1, 4)


def test_an_entry_of_exactly_max_entry_bytes_is_stored() -> None:
    cache = StaleCache(max_entry_bytes=4)
    assert cache.storable(get(), ok(**{"content-length": "4"}))
    assert not cache.storable(get(), ok(**{"content-length": "5"}))
    cache.store(get(), ok(), b"1234", now=0.0)
    assert (len(cache), cache.total_bytes) == (1, 4)
    kept = StaleCache(max_entry_bytes=4)
    kept.keep(get(), ok(), b"1234", now=0.0)
    kept.keep(get(URL + "&more"), ok(), b"12345", now=0.0)
    assert (len(kept), kept.total_bytes) == (1, 4)


@pytest.mark.parametrize("directives", ["max-age=0", "no-cache", "max-age=0, no-stored"])
def test_a_request_cache_control_without_no_store_allows_storing(directives: str) -> None:
    request = get(**{"cache-control": directives})
    assert StaleCache().storable(request, ok())
    cache = StaleCache()
    cache.keep(request, ok(), b"body", now=0.0)
    assert cache.find(get(), now=1.0) is not None


def test_entries_filling_max_total_bytes_exactly_are_all_kept() -> None:
    cache = StaleCache(max_total_bytes=10)
    cache.store(get("https://a.example.com/"), ok(), b"12345", now=0.0)
    cache.store(get("https://b.example.com/"), ok(), b"12345", now=0.0)
    assert (len(cache), cache.total_bytes) == (2, 10)
    cache.store(get("https://c.example.com/"), ok(), b"1", now=0.0)
    assert (len(cache), cache.total_bytes) == (2, 6)
    assert cache.lookup(get("https://a.example.com/"), 0.0) is None  # the oldest went


def test_an_expired_entry_is_dropped_and_its_bytes_given_back() -> None:
    cache = StaleCache(max_age=10)
    cache.store(get("https://a.example.com/"), ok(), b"12345", now=0.0)
    cache.store(get("https://b.example.com/"), ok(), b"123", now=5.0)
    assert cache.lookup(get("https://a.example.com/"), 10.5) is None
    assert (len(cache), cache.total_bytes) == (1, 3)


def test_the_lookup_honours_every_varied_header() -> None:
    cache = StaleCache()
    asked = {"accept-language": "fr", "accept-encoding": "gzip"}
    stored(cache, get(**asked), vary="Accept-Language, Accept-Encoding")
    assert cache.lookup(get(**asked), 1.0) is not None
    assert cache.lookup(get(**{**asked, "accept-language": "de"}), 1.0) is None
    assert cache.lookup(get(**{**asked, "accept-encoding": "br"}), 1.0) is None
    assert cache.lookup(get(), 1.0) is None


def test_the_answer_is_the_stored_one_for_this_request() -> None:
    cache = StaleCache()
    cache.store(get(), ok(203, etag="v1"), b"stored body", now=0.0)
    request = get()
    answer = cache.lookup(request, 2.0)
    assert answer is not None
    assert answer.status_code == 203
    assert answer.headers["etag"] == "v1"
    assert answer.read() == b"stored body"
    assert answer.request is request


def test_age_counts_whole_seconds_since_the_entry_was_stored() -> None:
    cache = StaleCache()
    cache.store(get(), ok(), b"body", now=100.0)
    for now, age in [(100.5, "0"), (101.0, "1"), (103.9, "3")]:
        answer = cache.lookup(get(), now)
        assert answer is not None
        assert answer.headers["age"] == age
    answer = cache.lookup(get(), 104.0)
    assert answer is not None
    assert (b"Age", b"4") in answer.headers.raw  # spelled as RFC 9111 does


def test_age_adds_to_the_age_the_upstream_gave() -> None:
    cache = StaleCache()
    cache.store(get(), ok(age="30"), b"body", now=0.0)
    answer = cache.lookup(get(), 5.0)
    assert answer is not None
    assert answer.headers.get_list("age") == ["35"]
    latin1 = httpx.Response(200, headers=[(b"age", "²".encode("latin-1"))], content=b"body")
    cache.store(get(), latin1, b"body", now=0.0)  # not a number: counted from 0
    answer = cache.lookup(get(), 5.0)
    assert answer is not None
    assert answer.headers["age"] == "5"


def test_the_defaults_are_the_documented_ones() -> None:
    cache = StaleCache()
    assert (cache.max_entries, cache.max_entry_bytes, cache.max_age) == (1024, 256_000, 3600.0)
    assert cache.max_total_bytes == 64 * 1024 * 1024


def test_the_smallest_settings_are_valid() -> None:
    cache = StaleCache(max_entries=1, max_entry_bytes=1, max_age=0.5, max_total_bytes=1)
    cache.store(get(), ok(), b"1", now=0.0)
    assert cache.lookup(get(), 0.5) is not None
    assert cache.lookup(get(), 0.6) is None


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_entries": 0}, ValueError, "StaleCache.max_entries must be >= 1, got 0"),
        ({"max_entry_bytes": -1}, ValueError, "StaleCache.max_entry_bytes must be >= 1, got -1"),
        ({"max_total_bytes": 0}, ValueError, "StaleCache.max_total_bytes must be >= 1, got 0"),
        ({"max_entries": "5"}, TypeError, "StaleCache.max_entries must be an int, got '5'"),
        (
            {"max_entry_bytes": True},
            TypeError,
            "StaleCache.max_entry_bytes must be an int, got True",
        ),
        ({"max_total_bytes": 1.5}, TypeError, "StaleCache.max_total_bytes must be an int, got 1.5"),
        ({"max_age": 0}, ValueError, "StaleCache.max_age must be > 0, got 0"),
        ({"max_age": float("nan")}, ValueError, "StaleCache.max_age must be > 0, got nan"),
        ({"max_age": "60"}, TypeError, "StaleCache.max_age must be a number, got '60'"),
        ({"max_age": False}, TypeError, "StaleCache.max_age must be a number, got False"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        StaleCache(**kwargs)  # type: ignore[arg-type]
    assert str(raised.value) == message


@pytest.mark.parametrize(
    "extra",
    [[], [("cache-control", "max-age=60")], [("vary", "accept")]],
    ids=["alone", "with cache-control", "with vary"],
)
def test_any_content_length_over_the_limit_forbids_storing(extra: list[tuple[str, str]]) -> None:
    """Every announced length counts, the first as much as the last, whatever
    other headers the answer carries."""
    headers = [("content-length", "999999"), ("content-length", "4"), *extra]
    answer = httpx.Response(200, headers=headers, content=b"body")
    assert not StaleCache(max_entry_bytes=1000).storable(get(), answer)
    assert StaleCache(max_entry_bytes=1000).storable(get(), ok(**dict(extra)))


@pytest.mark.parametrize(
    ("name", "value"),
    [("Authorization", "Bearer x"), ("COOKIE", "a=1"), ("Range", "bytes=0-1")],
)
def test_request_header_names_are_matched_in_any_case(name: str, value: str) -> None:
    request = httpx.Request("GET", URL, headers=[("accept", "*/*"), (name, value)])
    assert not StaleCache().storable(request, ok())


def test_the_cache_reads_headers_it_cannot_see_inside_as_httpx_gives_them() -> None:
    """Headers that do not keep httpx's own list (another library's) are read
    through their public ``raw``: the same verdicts."""

    class Opaque:
        def __init__(self, headers: httpx.Headers) -> None:
            self.raw = headers.raw
            self.copy = headers.copy  # (what a served answer starts from)

    private = get(authorization="Bearer x")
    private.headers = Opaque(private.headers)  # type: ignore[assignment]
    assert not StaleCache().storable(private, ok())
    answer = ok(**{"set-cookie": "a=1"})
    answer.headers = Opaque(answer.headers)  # type: ignore[assignment]
    assert not StaleCache().storable(get(), answer)
    plain = ok()
    plain.headers = Opaque(plain.headers)  # type: ignore[assignment]
    assert StaleCache().storable(get(), plain)
    varied = ok(vary="accept")
    varied.headers = Opaque(varied.headers)  # type: ignore[assignment]
    cache = StaleCache()
    cache.store(get(accept="a"), varied, b"body", now=0.0)
    assert cache.find(get(accept="b"), now=1.0) is None
    assert cache.find(get(accept="a"), now=1.0) is not None


@pytest.mark.parametrize("marker", [("cache-control", "max-age=60"), ("vary", "accept")])
def test_a_length_announced_after_other_headers_still_counts(marker: tuple[str, str]) -> None:
    """The length check is not skipped for an answer whose other headers need a
    closer look (``Cache-Control``, ``Vary`` before ``Content-Length``)."""
    cache = StaleCache(max_entry_bytes=1000)
    over = httpx.Response(200, headers=[marker, ("content-length", "1001")], content=b"b")
    assert not cache.storable(get(), over)
    exact = httpx.Response(200, headers=[marker, ("content-length", "1000")], content=b"b")
    assert cache.storable(get(), exact)


def test_the_fragment_is_no_part_of_the_key() -> None:
    cache = StaleCache()
    cache.store(get(URL + "#top"), ok(), b"body", now=0.0)
    assert cache.find(get(URL + "#bottom"), now=1.0) is not None
    assert len(cache) == 1
    kept = StaleCache()
    kept.keep(get(URL + "#top"), ok(), b"body", now=0.0)
    assert kept.find(get(URL), now=1.0) is not None
    kept.keep(get(URL), ok(), b"body", now=0.0)
    assert len(kept) == 1


def test_httpx_own_headers_and_urls_are_read_in_place() -> None:
    """With the httpx installed here, the cache reads its headers' list and its
    URL's parse as they stand (the path every stored success takes); an httpx
    that held them differently would send the cache through the public parts."""
    from resilient_http import _cache

    assert _cache._httpx_as_expected()
    assert _cache._HEADERS is httpx.Headers
    assert _cache._URL is httpx.URL


def test_too_many_entries_at_exactly_the_byte_bound_drop_only_the_oldest() -> None:
    cache = StaleCache(max_entries=2, max_total_bytes=8)
    for page in range(3):
        cache.store(get(f"https://api.example.com/{page}"), ok(), b"four", now=float(page))
    assert len(cache) == 2
    assert cache.total_bytes == 8
    assert cache.find(get("https://api.example.com/0"), now=3.0) is None
    assert cache.find(get("https://api.example.com/2"), now=3.0) is not None


def test_an_answer_with_cache_control_and_no_length_is_storable() -> None:
    """A streamed answer announces no length: its Cache-Control alone decides."""
    streamed = httpx.Response(200, headers=[("cache-control", "max-age=60")])
    assert "content-length" not in streamed.headers
    assert StaleCache().storable(get(), streamed)
