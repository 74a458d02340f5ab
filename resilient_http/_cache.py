"""StaleCache: the last good GET answers a rejected GET ("serve stale while open")."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from ._types import URL, Headers, Request, Response

__all__ = ["StaleCache"]


#: A URL as the cache tells them apart: scheme, userinfo, host, port, path, query
#: (and ``None`` where the fragment was), or, without httpx's parse, the public parts.
_Key = tuple[object, ...]
#: The request's values of the headers a stored answer varies on.
_Vary = tuple[tuple[str, str | None], ...]
#: A stored answer: status, the response's own headers (copied when served, never
#: when stored), body, when it was stored, what it varies on. A plain tuple, not a
#: class: every stored success makes one, and a tuple costs a quarter as much.
_Entry = tuple[int, "Headers", bytes, float, _Vary]
_Held = list[tuple[bytes, bytes, bytes]]


def _directives(values: list[bytes]) -> set[bytes]:
    """The directive names of ``Cache-Control`` header values."""
    return {
        part.strip().split(b"=", 1)[0].lower() for value in values for part in value.split(b",")
    }


#: Request headers that may forbid storing: private answers (Authorization,
#: Cookie), a part of the resource (Range), Cache-Control: no-store.
_REQUEST_NAMES = frozenset({b"authorization", b"cookie", b"range", b"cache-control"})
#: Request headers that may make an answer personal: it is neither stored nor served.
_PRIVATE = frozenset({b"authorization", b"cookie"})
#: ``Cache-Control`` directives of a response that forbid storing it.
_FORBID_STORING = frozenset({b"no-store", b"private"})
#: Response headers that may forbid storing it.
_RESPONSE_NAMES = frozenset({b"content-length", b"set-cookie", b"vary", b"cache-control"})


def _held(headers: Headers) -> _Held:
    """``(raw name, lower-case name, value)`` per header: httpx's (and httpx2's)
    own list when it holds one, else built from ``raw``."""
    held = getattr(headers, "_list", None)
    if isinstance(held, list):
        return held
    return [(name, name.lower(), value) for name, value in headers.raw]


def _key(url: URL) -> _Key:
    # the URL's parts as httpx already holds them (no re-parsing); the
    # fragment is not among them, userinfo is kept apart
    parts = getattr(url, "_uri_reference", None)  # httpx's and httpx2's parse
    if isinstance(parts, tuple) and len(parts) == 7:
        # scheme, userinfo, host, port, path, query, and no fragment: the parse
        # itself when it holds none (most URLs: no copy to make)
        return parts if parts[6] is None else (*parts[:6], None)
    return (url.scheme, url.userinfo, url.raw_host, url.port, url.raw_path)


def _httpx_as_expected() -> bool:
    """Does this httpx hold what ``_held`` and ``_key`` read: its headers as a
    list of ``(raw, lower-case, value)``, its URL's parse as seven parts?"""
    held = getattr(httpx.Headers({"A": "b"}), "_list", None)
    parts = getattr(httpx.URL("http://h/p?q#f"), "_uri_reference", None)
    return held == [(b"A", b"a", b"b")] and isinstance(parts, tuple) and len(parts) == 7


#: The classes whose headers and URL are read in place on the path every
#: success takes: httpx's own, when they hold what ``_held`` and ``_key`` look
#: for. Any other (httpx2's, a subclass) goes through those, a call later.
_HEADERS, _URL = (httpx.Headers, httpx.URL) if _httpx_as_expected() else (None, None)


def _refuses(name: bytes, value: bytes) -> bool:
    """Does this request header, one of ``_REQUEST_NAMES``, forbid storing the
    answer? Any but ``Cache-Control`` does; that one when it says ``no-store``."""
    if name != b"cache-control":
        return True
    # (parsed only when the word is in it at all; find: see _forbids_storing)
    return value.lower().find(b"no-store") != -1 and b"no-store" in _directives([value])


def _forbids_storing(value: bytes) -> bool:
    """Does this ``Cache-Control`` value of a response say ``no-store`` or ``private``?"""
    lowered = value.lower()
    # Parsed only when either word is in it at all (most values hold neither).
    # find, not `in`: on bytes `in` first tries the needle as an int, and makes
    # and drops a TypeError, several times the cost of the search.
    if lowered.find(b"no-store") == -1 and lowered.find(b"private") == -1:
        return False
    return not _FORBID_STORING.isdisjoint(_directives([value]))


def _answer_vary(held: _Held, limit: int) -> list[bytes] | None:
    """The values of the answer's ``Vary`` headers, if its headers allow storing
    it (``Content-Length``, ``Set-Cookie``, ``Vary``, ``Cache-Control``), else ``None``."""
    vary: list[bytes] = []
    for _, name, value in held:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                return None  # announced larger than an entry may be
        elif name == b"cache-control":
            if _forbids_storing(value):
                return None
        elif name == b"vary":
            if value.find(b"*") != -1:
                return None
            vary.append(value)
        elif name == b"set-cookie":
            return None
    return vary


def _judge(request: Request, response: Response, limit: int) -> Sequence[bytes] | None:
    """``None``: the answer may not be stored. Else the values of its ``Vary``
    headers (most often none)."""
    status = response.status_code
    if request.method != "GET" or not 200 <= status < 300 or status == 206:
        return None  # 206: a part of the resource must never answer for the whole
    # Each success comes here (``storable`` or ``keep``): httpx's own lists are
    # read in place, each once, and helpers are only called for the few headers
    # that need a closer look.
    asked = request.headers
    for _, name, value in asked._list if type(asked) is _HEADERS else _held(asked):
        if name in _REQUEST_NAMES and _refuses(name, value):
            return None
    answered = response.headers
    held = answered._list if type(answered) is _HEADERS else _held(answered)
    for _, name, value in held:
        if name in _RESPONSE_NAMES and (
            name != b"content-length"
            # (five digits at most cannot pass a limit of 100,000 or more: no int() made)
            or ((len(value) > 5 or limit < 100_000) and value.isdigit() and int(value) > limit)
        ):
            return _answer_vary(held, limit)  # (a closer look, at all of them)
    return ()


def _varied(request: Request, values: Sequence[bytes]) -> _Vary:
    """The request's values of the headers a response varies on."""
    headers = request.headers
    varied = []
    for value in values:
        for part in value.split(b","):
            name = part.strip().lower().decode("latin-1")
            if name:
                varied.append((name, headers.get(name)))
    return tuple(varied)


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

    def storable(self, request: Request, response: Response) -> bool:
        """May this response be remembered? Checked on the status line."""
        return _judge(request, response, self.max_entry_bytes) is not None

    def keep(self, request: Request, response: Response, body: bytes, now: float) -> None:
        """Remember an answer whose body is already in memory, if it may be:
        ``storable`` and ``store`` in one pass over its headers."""
        size = len(body)
        if size > self.max_entry_bytes:
            return
        values = _judge(request, response, self.max_entry_bytes)
        if values is None:
            return
        url = request.url
        # httpx's own parse is the key as it stands unless it holds a fragment
        key: _Key | None = url._uri_reference if type(url) is _URL else None
        if key is None or key[6] is not None:
            key = _key(url)
        vary = _varied(request, values) if values else ()
        self._add(key, (response.status_code, response.headers, body, now, vary), size)

    def store(self, request: Request, response: Response, body: bytes, now: float) -> None:
        """Remember an answer found ``storable`` on its status line, now that its
        body has arrived in full."""
        size = len(body)
        if size > self.max_entry_bytes:
            return
        vary: _Vary = ()
        headers = response.headers
        held = headers._list if type(headers) is _HEADERS else _held(headers)
        for _, name, _ in held:
            if name == b"vary":  # (most answers name none: no list made)
                vary = _varied(request, [value for _, name, value in held if name == b"vary"])
                break
        self._add(_key(request.url), (response.status_code, headers, body, now, vary), size)

    def _add(self, key: _Key, entry: _Entry, size: int) -> None:
        """Put the entry in (of ``size`` bytes), last: the most recently stored."""
        entries = self._entries
        lock = self._lock
        # acquire/release, not `with`: half the cost, and every stored success pays it
        lock.acquire()
        try:
            old = entries.pop(key, None)
            entries[key] = entry
            if old is not None:
                size -= len(old[2])
            self._bytes = total = self._bytes + size
            if len(entries) > self.max_entries or total > self.max_total_bytes:
                self._shrink()
        finally:
            lock.release()

    def _shrink(self) -> None:
        """Drop the least recently stored entries until within both bounds
        (with the lock held)."""
        entries = self._entries
        while entries and (len(entries) > self.max_entries or self._bytes > self.max_total_bytes):
            _, evicted = entries.popitem(last=False)
            self._bytes -= len(evicted[2])

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
        if not _PRIVATE.isdisjoint([name for _, name, _ in _held(request.headers)]):
            return None  # (each `name in headers` would decode the whole list again)
        key = _key(request.url)
        entry = self._entries.get(key)
        if entry is None:
            return None
        status, stored, body, stored_at, vary = entry
        age = now - stored_at
        if age > self.max_age:
            with self._lock:  # unless another thread replaced or dropped it meanwhile
                if self._entries.get(key) is entry:
                    del self._entries[key]
                    self._bytes -= len(body)
            return None
        if any(request.headers.get(name) != value for name, value in vary):
            return None
        headers = stored.copy()
        previous = headers.get("age", "")
        # ASCII digits only: a latin-1 "²" passes str.isdigit() and fails int()
        base = int(previous) if previous.isascii() and previous.isdigit() else 0
        headers["Age"] = str(base + int(max(0.0, age)))
        return status, headers, body
