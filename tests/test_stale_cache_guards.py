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


@pytest.mark.parametrize(
    ("request_", "response", "why"),
    [
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
    ],
)
def test_each_reason_not_to_store_holds_on_its_own(
    request_: httpx.Request, response: httpx.Response, why: str
) -> None:
    assert not StaleCache(max_entry_bytes=1000).storable(request_, response), why


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
