"""The request, response, URL and header types the shared modules read: those
of httpx or of httpx2, which have the same shape. Names for annotations only:
nothing here imports httpx2 when the program runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import TypeAlias

    import httpx
    import httpx2

    Request: TypeAlias = httpx.Request | httpx2.Request
    Response: TypeAlias = httpx.Response | httpx2.Response
    URL: TypeAlias = httpx.URL | httpx2.URL
    Headers: TypeAlias = httpx.Headers | httpx2.Headers
