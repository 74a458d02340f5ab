"""StaleCache: the last good GET answers a rejected GET ("serve stale while open")."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from ._types import URL, Headers, Request, Response

__all__ = ["StaleCache"]


#: A URL as the cache tells them apart: scheme, userinfo, host, port, path+query.
_Key = tuple[object, ...]


@dataclass(slots=True)
class _Entry:
    status: int
    headers: Headers  # the response's own (copied when served, never when stored)
    body: bytes
    stored_at: float
    vary: tuple[tuple[str, str | None], ...]


def _directives(values: list[bytes]) -> set[bytes]:
    """The directive names of ``Cache-Control`` header values."""
    return {
        part.strip().split(b"=", 1)[0].lower() for value in values for part in value.split(b",")
    }


#: Request headers that forbid storing (private answers, or a part of the resource).
_PRIVATE_REQUEST = frozenset({b"authorization", b"cookie", b"range"})


def _held(headers: Headers) -> list[tuple[bytes, bytes, bytes]]:
    """``(raw name, lower-case name, value)`` per header: httpx's (and httpx2's)
    own list when it holds one, else built from ``raw``."""
    held = getattr(headers, "_list", None)
    if isinstance(held, list):
        return held
    return [(name, name.lower(), value) for name, value in headers.raw]


def _by_name(headers: Headers, names: frozenset[bytes]) -> dict[bytes, list[bytes]]:
    """The raw values of the named headers (lower-case names), in one pass over
    the bytes httpx holds: nothing decoded (each ``headers[name]`` lookup would
    scan and decode the whole list again)."""
    found: dict[bytes, list[bytes]] = {}
    for _, name, value in _held(headers):
        if name in names:
            found.setdefault(name, []).append(value)
    return found


_REQUEST_NAMES = _PRIVATE_REQUEST | {b"cache-control"}
#: ``Cache-Control`` directives of a response that forbid storing it.
_FORBID_STORING = frozenset({b"no-store", b"private"})
#: Response headers that may forbid storing, besides ``Content-Length``.
_RESPONSE_NAMES = frozenset({b"set-cookie", b"vary", b"cache-control"})
_VARY = frozenset({b"vary"})
_CONTENT_LENGTH = frozenset({b"content-length"})


def _request_allows(request: Request) -> bool:
    for _, name, _ in _held(request.headers):
        if name in _REQUEST_NAMES:
            break
    else:
        return True  # (most requests: nothing more to read)
    asked = _by_name(request.headers, _REQUEST_NAMES)
    if not _PRIVATE_REQUEST.isdisjoint(asked):
        return False  # private (Authorization, Cookie) or partial (Range)
    # neither private nor partial: what made it look is its Cache-Control
    return b"no-store" not in _directives(asked[b"cache-control"])


def _marked_storable(response: Response) -> bool:
    """Do the response's ``Set-Cookie``, ``Vary`` and ``Cache-Control`` allow storing it?"""
    answered = _by_name(response.headers, _RESPONSE_NAMES)
    if b"set-cookie" in answered:
        return False
    for value in answered.get(b"vary", ()):
        if b"*" in value:
            return False
    control = answered.get(b"cache-control")
    return control is None or _FORBID_STORING.isdisjoint(_directives(control))


def _varied(request: Request, values: list[bytes]) -> tuple[tuple[str, str | None], ...]:
    """The request's values of the headers a response varies on."""
    return tuple(
        (name, request.headers.get(name))
        for value in values
        for name in (part.strip().lower().decode("latin-1") for part in value.split(b","))
        if name
    )


class StaleCache:
    """Remembers the last good (2xx) ``GET`` response per URL, captured while the
    caller reads it (never an extra read, never past ``max_entry_bytes``), and
    answers a *rejected* ``GET`` for that URL with it, before any fallback.

    The answer has the same status, headers and body, an ``Age`` header, and
    ``response.extensions["resilient_http.fallback"]`` set to the rejection
    reason. Entries older than ``max_age`` seconds are not served. Bounded by
    ``max_entries`` and ``max_total_bytes`` (least recently stored go first).

    Nothing is stored for responses marked ``Cache-Control: no-store`` or
    ``private``, or carrying ``Set-Cookie`` or ``Vary: *``; for requests with
    ``Authorization`` or ``Cookie`` headers (they may be personal) or
    ``Cache-Control: no-store``; nor for any method but ``GET``. A ``Vary``
    header is respected: a stored answer is only served to a request with the
    same values of the varied headers.
    """

    def __init__(
        self,
        max_entries: int = 1024,
        max_entry_bytes: int = 256_000,
        max_age: float = 3600.0,
        *,
        max_total_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        for name, value in (
            ("max_entries", max_entries),
            ("max_entry_bytes", max_entry_bytes),
            ("max_total_bytes", max_total_bytes),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"StaleCache.{name} must be an int, got {value!r}")
            if value < 1:
                raise ValueError(f"StaleCache.{name} must be >= 1, got {value!r}")
        if isinstance(max_age, bool) or not isinstance(max_age, int | float):
            raise TypeError(f"StaleCache.max_age must be a number, got {max_age!r}")
        if math.isnan(max_age) or max_age <= 0:
            raise ValueError(f"StaleCache.max_age must be > 0, got {max_age!r}")
        self.max_entries = max_entries
        self.max_entry_bytes = max_entry_bytes
        self.max_age = float(max_age)
        self.max_total_bytes = max_total_bytes
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()
        self._bytes = 0
        # the entries and their byte count change together: a sync transport's
        # threads store and expire at once (reads need no lock)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    @staticmethod
    def _key(url: URL) -> _Key:
        # the URL's parts as httpx already holds them (no re-parsing); the
        # fragment is not among them, userinfo is kept apart
        parts = getattr(url, "_uri_reference", None)  # httpx's and httpx2's parse
        if isinstance(parts, tuple) and len(parts) == 7:
            return parts[:6]  # scheme, userinfo, host, port, path, query
        return (url.scheme, url.userinfo, url.raw_host, url.port, url.raw_path)

    def storable(self, request: Request, response: Response) -> bool:
        """May this response be remembered? Checked on the status line."""
        return self._verdict(request, response) is not False

    def keep(self, request: Request, response: Response, body: bytes, now: float) -> None:
        """Remember an answer whose body is already in memory, if it may be:
        ``storable`` and ``store`` in one pass over its headers."""
        verdict = self._verdict(request, response)
        if verdict is not False:
            self._put(request, response, body, now, verdict is None)

    def store(self, request: Request, response: Response, body: bytes, now: float) -> None:
        """Remember an answer found ``storable`` on its status line, now that its
        body has arrived in full."""
        self._put(request, response, body, now, True)

    def _verdict(self, request: Request, response: Response) -> bool | None:
        """``False``: not to be stored. ``True``: storable, and the answer names
        none of ``Set-Cookie``, ``Vary``, ``Cache-Control`` (most do not).
        ``None``: storable, and it names some of them."""
        status = response.status_code
        if request.method != "GET" or not 200 <= status < 300 or status == 206:
            return False  # 206: a part of the resource must never answer for the whole
        if not _request_allows(request):
            return False
        limit = self.max_entry_bytes
        for _, name, value in _held(response.headers):
            if name == b"content-length":
                if value.isdigit() and int(value) > limit:
                    return False
            elif name in _RESPONSE_NAMES:
                return None if _marked_storable(response) and self._fits(response) else False
        return True

    def _fits(self, response: Response) -> bool:
        lengths = _by_name(response.headers, _CONTENT_LENGTH).get(b"content-length", ())
        return not any(n.isdigit() and int(n) > self.max_entry_bytes for n in lengths)

    def _put(
        self, request: Request, response: Response, body: bytes, now: float, marked: bool
    ) -> None:
        """Store the entry (``marked``: the answer may carry a ``Vary`` header)."""
        size = len(body)
        if size > self.max_entry_bytes:
            return
        varied = _by_name(response.headers, _VARY) if marked else None
        vary = _varied(request, varied[b"vary"]) if varied else ()
        entry = _Entry(response.status_code, response.headers, body, now, vary)
        key = self._key(request.url)
        entries = self._entries
        with self._lock:
            old = entries.pop(key, None)
            if old is not None:
                size -= len(old.body)
            entries[key] = entry
            self._bytes += size
            if len(entries) > self.max_entries or self._bytes > self.max_total_bytes:
                self._shrink()

    def _shrink(self) -> None:
        """Drop the least recently stored entries until within both bounds
        (with the lock held)."""
        entries = self._entries
        while entries and (len(entries) > self.max_entries or self._bytes > self.max_total_bytes):
            _, evicted = entries.popitem(last=False)
            self._bytes -= len(evicted.body)

    def lookup(self, request: httpx.Request, now: float) -> httpx.Response | None:
        """A fresh copy of the stored answer for this GET, or ``None``."""
        found = self.find(request, now)
        if found is None:
            return None
        status, headers, body = found
        return httpx.Response(
            status, headers=headers, stream=httpx.ByteStream(body), request=request
        )

    def find(self, request: Request, now: float) -> tuple[int, Headers, bytes] | None:
        """The stored answer for this GET (status, a copy of its headers with
        ``Age`` set, body), or ``None``. Builds no response, so any binding
        (httpx or httpx2) makes its own from it."""
        if request.method != "GET" or not self._entries:
            return None
        if "authorization" in request.headers or "cookie" in request.headers:
            return None
        key = self._key(request.url)
        entry = self._entries.get(key)
        if entry is None:
            return None
        age = now - entry.stored_at
        if age > self.max_age:
            with self._lock:  # unless another thread replaced or dropped it meanwhile
                if self._entries.get(key) is entry:
                    del self._entries[key]
                    self._bytes -= len(entry.body)
            return None
        if any(request.headers.get(name) != value for name, value in entry.vary):
            return None
        headers = entry.headers.copy()
        previous = headers.get("age", "")
        # ASCII digits only: a latin-1 "²" passes str.isdigit() and fails int()
        base = int(previous) if previous.isascii() and previous.isdigit() else 0
        headers["Age"] = str(base + int(max(0.0, age)))
        return entry.status, headers, entry.body
