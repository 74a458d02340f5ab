# Generated from resilient_http/_async/_streams.py by tests/codegen.py: do not edit.
"""The response streams of the async binding: a body observed as the caller
reads it (its verdict reaches the breaker when it ends), a body that frees a
bulkhead slot when it ends, and a discarded response kept readable."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx2

from resilient_http._breaker import Clock
from resilient_http.httpx2._async import _io
from resilient_http.httpx2._exceptions import DeadlineExceeded
from resilient_http.httpx2._failures import is_failure

__all__ = ["RETAIN_LIMIT", "BodyEnded", "ObservedStream", "retain", "when_body_ends"]

#: A response discarded for a retry is read into memory (up to this size) and
#: closed before the backoff sleep, so its connection goes back to the pool and
#: the response stays readable if the loop then stops.
RETAIN_LIMIT = 256 * 1024


async def _finish(iterator: AsyncIterator[bytes] | None) -> None:
    """Close a body's iterator that stopped part-way (a generator, as httpx2's
    streams give): left to the garbage collector, it is finalized late, and
    trio warns about each one in the chain."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


async def retain(
    request: httpx2.Request, response: httpx2.Response, clock: Clock, deadline: float
) -> bool:
    """Read a response about to be discarded for a retry into memory and close
    it, so its connection returns to the pool while it stays readable.

    Returns ``False`` when that cannot be done and the loop must stop, handing
    the response over: past ``RETAIN_LIMIT`` bytes the body is handed over
    intact (what was read, then the rest); a body still arriving at the
    deadline is cut (its connection closed), and reading it raises
    ``DeadlineExceeded`` after what had arrived.
    """
    if response.is_closed or isinstance(response.stream, httpx2.ByteStream):
        return True
    raw = response.stream
    assert isinstance(raw, httpx2.AsyncByteStream)
    chunks: list[bytes] = []
    size = 0
    iterator = raw.__aiter__()
    with _io.move_on_after(deadline - clock()):
        try:
            async for chunk in iterator:
                chunks.append(chunk)
                size += len(chunk)
                if clock() >= deadline:
                    break
                if size > RETAIN_LIMIT:
                    response.stream = _ReplayStream(chunks, iterator, raw)
                    return False
            else:
                await raw.aclose()
                response.stream = httpx2.ByteStream(b"".join(chunks))
                return True
        except Exception as exc:
            await _finish(iterator)
            await raw.aclose()
            response.stream = _ReplayStream(chunks, None, None, error=exc)
            return True
        except BaseException:
            with _io.shielded():
                await _finish(iterator)
                await raw.aclose()
            raise
    with _io.shielded():
        await _finish(iterator)
        await raw.aclose()
    cut = DeadlineExceeded(
        "retry deadline reached while the response body was arriving", request=request
    )
    response.stream = _ReplayStream(chunks, None, None, error=cut)
    return False


def when_body_ends(response: httpx2.Response, callback: Callable[[], object]) -> httpx2.Response:
    """Call ``callback`` once the response's body ends (read, closed or failed),
    or now when the body is already in memory."""
    stream = response.stream
    if response.is_closed or isinstance(stream, httpx2.ByteStream):
        callback()
    else:
        assert isinstance(stream, httpx2.AsyncByteStream)
        response.stream = _EndNotifyingStream(stream, callback)
    return response


class _EndNotifyingStream(httpx2.AsyncByteStream):
    """Passes a body through and calls ``callback`` once, when it ends."""

    __slots__ = ("_callback", "_stream")

    def __init__(self, stream: httpx2.AsyncByteStream, callback: Callable[[], object]) -> None:
        self._stream = stream
        self._callback: Callable[[], object] | None = callback

    def _end(self) -> None:
        callback, self._callback = self._callback, None
        if callback is not None:
            callback()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        iterator = self._stream.__aiter__()
        try:
            async for chunk in iterator:
                yield chunk
        finally:
            try:
                await _finish(iterator)  # (closed part-way: the body's own iterator too)
            finally:
                self._end()

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._end()


class _ReplayStream(httpx2.AsyncByteStream):
    """Chunks already read, then the rest of the original stream (or its error)."""

    def __init__(
        self,
        chunks: list[bytes],
        rest: AsyncIterator[bytes] | None,
        raw: httpx2.AsyncByteStream | None,
        *,
        error: BaseException | None = None,
    ) -> None:
        self._chunks = chunks
        self._rest = rest
        self._raw = raw
        self._error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk
        if self._rest is not None:
            try:
                async for chunk in self._rest:
                    yield chunk
            finally:
                await _finish(self._rest)
        if self._error is not None:
            raise self._error

    async def aclose(self) -> None:
        try:
            await _finish(self._rest)  # (never iterated to its end: still open)
        finally:
            if self._raw is not None:
                await self._raw.aclose()


#: Called once when an observed body ends: ``(error, body)``, where ``error`` is
#: ``None`` (read in full, or closed early) or what ended it, and ``body`` the
#: bytes read when the stream captured them and they arrived in full. Returns
#: the async listener calls the verdict set off, for the reader to run.
BodyEnded = Callable[[BaseException | None, bytes | None], list[Awaitable[object]]]


class ObservedStream(httpx2.AsyncByteStream):
    """Passes a body through untouched and calls ``on_end`` once, when it ends
    (read in full, closed, or failed), then runs the listener calls that
    returned. With ``capture_limit`` set, also copies the body as the caller
    reads it, giving up past that many bytes. Buffers nothing else."""

    __slots__ = ("_capture", "_limit", "_on_end", "_size", "_stream")

    def __init__(
        self, stream: httpx2.AsyncByteStream, on_end: BodyEnded, capture_limit: int | None = None
    ) -> None:
        self._stream = stream
        self._on_end: BodyEnded | None = on_end
        self._limit = capture_limit
        self._capture: list[bytes] | None = [] if capture_limit is not None else None
        self._size = 0

    def _end(self, exc: BaseException | None, complete: bool = False) -> list[Awaitable[object]]:
        on_end, self._on_end = self._on_end, None
        if on_end is None:
            return []
        capture, self._capture = self._capture, None
        body = b"".join(capture) if complete and capture is not None else None
        return on_end(exc, body)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        iterator = self._stream.__aiter__()
        try:
            async for chunk in iterator:
                capture = self._capture
                if capture is not None:
                    self._size += len(chunk)
                    if self._limit is not None and self._size <= self._limit:
                        capture.append(chunk)
                    else:
                        self._capture = None
                yield chunk
        except GeneratorExit:  # closed part-way: the body's own iterator too
            await _finish(iterator)
            raise
        except Exception as exc:  # the body failed: its listeners run, then the error
            await _io.settle(self._end(exc))
            raise
        except BaseException as exc:  # cancelled: no waiting for listeners
            _io.run_detached(self._end(exc))
            raise
        await _io.settle(self._end(None, complete=True))

    async def aclose(self) -> None:
        # httpx2 closes a response from its error handler when reading it failed
        # above the transport (a body that does not decode): that error, if
        # any, is the one being handled now, and judges the call
        handling = sys.exc_info()[1]
        if isinstance(handling, Exception) and not is_failure(handling):
            handling = None  # the caller's own error: the upstream did its part
        try:
            await self._stream.aclose()
        finally:
            owed = self._end(handling)
        if handling is None or isinstance(handling, Exception):
            await _io.settle(owed)
        else:  # closed because the reader was cancelled: no waiting for listeners
            _io.run_detached(owed)
