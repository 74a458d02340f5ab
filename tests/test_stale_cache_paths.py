"""The stale cache judges an answer the same on each of its paths: ``keep`` (a
body already in memory; the path every such success takes, which reads httpx's
own objects in place) and ``storable`` then ``store`` (a streamed body); for
httpx's own headers and URLs and for any other (read through their public
parts). And its byte count holds when threads keep answers at once."""

from __future__ import annotations

import itertools
import sys
import threading

import httpx
import pytest

from resilient_http import StaleCache

URL = "https://api.example.com/items?page=1"


def get(url: str = URL, /, *headers: tuple[str, str]) -> httpx.Request:
    return httpx.Request("GET", url, headers=list(headers))


def answer(status: int = 200, /, *headers: tuple[str, str]) -> httpx.Response:
    return httpx.Response(status, headers=list(headers), content=b"body")


REQUESTS = [
    get(),
    get(URL + "#part"),
    get("https://user:pw@api.example.com/items?page=1"),
    get(URL, ("accept-language", "fr"), ("accept", "text/plain")),
    get(URL, ("Authorization", "Bearer x")),
    get(URL, ("cookie", "a=1")),
    get(URL, ("range", "bytes=0-1")),
    get(URL, ("cache-control", "no-store")),
    get(URL, ("cache-control", "max-age=0, No-Store")),
    get(URL, ("cache-control", "max-age=0")),
    get(URL, ("cache-control", "no-stored, x-no-store=1")),
    get(URL, ("cache-control", "max-age=0"), ("authorization", "Bearer x")),
    httpx.Request("POST", URL),
]

#: Around each limit the tests use (1,000, 100,000, 256,000), and not numbers at all.
LENGTHS = ["4", "999", "1000", "1001", "0001000", "0001001", "99999", "100000", "100001"]
LENGTHS += ["256000", "256001", "999999", "x1", "12 "]

ANSWERS = [
    answer(),
    answer(203, ("etag", "v1")),
    answer(204),
    answer(206),
    answer(299),
    answer(300),
    answer(500),
    answer(200, ("set-cookie", "a=1")),
    answer(200, ("vary", "*")),
    answer(200, ("vary", "Accept, *")),
    answer(200, ("vary", "Accept-Language, Accept"), ("vary", "X-Other")),
    answer(200, ("cache-control", "max-age=60, public")),
    answer(200, ("cache-control", "no-store")),
    answer(200, ("cache-control", 'private="x-user"')),
    answer(200, ("cache-control", "max-age=60, Private")),
    answer(200, ("cache-control", "x-private, no-stored")),
    answer(200, ("cache-control", "public"), ("Cache-Control", "no-store")),
    answer(200, ("content-type", "text/plain"), ("date", "Mon, 01 Jan 2024 00:00:00 GMT")),
    *(
        answer(200, ("content-length", length), *extra)
        for length in LENGTHS
        for extra in [[], [("cache-control", "max-age=1")], [("vary", "accept")]]
    ),
    answer(200, ("cache-control", "max-age=1"), ("content-length", "1001")),
    answer(200, ("content-length", "4"), ("content-length", "1001")),
]


def kept(cache: StaleCache, request: httpx.Request, response: httpx.Response) -> None:
    cache.keep(request, response, b"body", now=0.0)


def streamed(cache: StaleCache, request: httpx.Request, response: httpx.Response) -> None:
    if cache.storable(request, response):
        cache.store(request, response, b"body", now=0.0)


def served(cache: StaleCache, request: httpx.Request) -> object:
    """What the cache answers this request and its variants (entries, bytes,
    and for each a found answer's status, headers and body)."""
    found = []
    for asking in (get(), get(URL, ("accept-language", "fr"), ("accept", "text/plain"))):
        answer = cache.find(asking, now=1.0)
        found.append(None if answer is None else (answer[0], answer[1].raw, answer[2]))
    return len(cache), cache.total_bytes, found


@pytest.mark.parametrize("limit", [1000, 100_000, 256_000])
def test_keep_judges_and_stores_as_storable_then_store(limit: int) -> None:
    for request, response in itertools.product(REQUESTS, ANSWERS):
        in_memory, read = StaleCache(max_entry_bytes=limit), StaleCache(max_entry_bytes=limit)
        kept(in_memory, request, response)
        streamed(read, request, response)
        why = (request, request.headers, response.status_code, response.headers, limit)
        assert served(in_memory, request) == served(read, request), why


class OtherHeaders(httpx.Headers):
    """Headers of another class: read through ``raw`` and ``get``."""


class OtherURL(httpx.URL):
    """A URL of another class: keyed as httpx's own are."""


def elsewhere(request: httpx.Request) -> httpx.Request:
    other = httpx.Request(request.method, OtherURL(str(request.url)))
    other.headers = OtherHeaders(request.headers)
    return other


@pytest.mark.parametrize("how", [kept, streamed], ids=["keep", "storable+store"])
def test_other_headers_and_urls_are_judged_and_keyed_the_same(how: object) -> None:
    assert callable(how)
    for request, response in itertools.product(REQUESTS, ANSWERS):
        own, other = StaleCache(max_entry_bytes=1000), StaleCache(max_entry_bytes=1000)
        how(own, request, response)
        other_response = httpx.Response(
            response.status_code, headers=OtherHeaders(response.headers), content=b"body"
        )
        how(other, elsewhere(request), other_response)
        why = (request, request.headers, response.status_code, response.headers)
        assert served(own, request) == served(other, request), why
        for asking in (get(), elsewhere(get())):  # either finds what the other stored
            assert (own.find(asking, 1.0) is None) == (other.find(asking, 1.0) is None), why


def test_a_fragment_is_no_part_of_the_key_on_either_path() -> None:
    for how in (kept, streamed):
        cache = StaleCache()
        how(cache, get(URL + "#top"), answer())
        how(cache, get(URL + "#"), answer())
        how(cache, get(URL), answer())
        assert (len(cache), cache.total_bytes) == (1, 4)
        assert cache.find(get(URL + "#bottom"), now=1.0) is not None


def test_the_byte_count_holds_when_threads_keep_the_same_urls() -> None:
    """``keep`` changes the entries and their count under the lock, as ``store``
    does: answers kept for the same URLs from six threads at once leave the
    count equal to what the cache holds."""
    cache = StaleCache(max_entries=50, max_total_bytes=100_000)
    response = httpx.Response(200, content=b"x")
    requests = [httpx.Request("GET", f"https://api.example.com/{i}") for i in range(5)]
    start = threading.Barrier(6)

    def keep(thread: int) -> None:
        start.wait()
        for i in range(20_000):
            cache.keep(requests[i % 5], response, b"x" * (1 + (i + thread) % 7), float(i))

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=keep, args=(t,)) for t in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        sys.setswitchinterval(previous)
    held = [cache.find(request, now=20_000.0) for request in requests]
    assert cache.total_bytes == sum(len(found[2]) for found in held if found is not None)
    assert len(cache) == 5
