from __future__ import annotations

import httpx

from resilient_http import ResilientTransport

from .server import LiveServer


async def test_request_through_real_server(live: LiveServer) -> None:
    async with httpx.AsyncClient(transport=ResilientTransport()) as client:
        response = await client.get(f"{live.url}/status/200")
    assert response.status_code == 200
    assert live.state.hits["/status/200"] == 1
