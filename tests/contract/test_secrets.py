"""No URL query string, userinfo or header value ever leaves through a log
record, a metric label, an event, a snapshot or an exception message, whatever
fault the upstream throws (tests/faults.py), on every binding: httpx's and
httpx2's exceptions and the sync transports' log lines too (the sync calls run
in worker threads)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import tenacity

from resilient_http import Event, StateChanged
from resilient_http.testing import FakeClock

from ..bindings import Binding
from ..faults import FaultServer, closed_port, start_faults

try:
    from prometheus_client import CollectorRegistry

    from resilient_http.prometheus import PrometheusMetrics
except ImportError:  # pragma: no cover - the extra is part of the test dependencies
    PrometheusMetrics = None  # type: ignore[assignment,misc]

try:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from resilient_http.otel import OpenTelemetryMetrics
except ImportError:  # pragma: no cover
    OpenTelemetryMetrics = None  # type: ignore[assignment,misc]

SECRETS = (
    "leakuser",
    "leakpass",
    "leakquery",
    "leakbearer",
    "leakapikey",
    "leakcookie",
    "leakidem",
)
HEADERS = {
    "Authorization": "Bearer leakbearer",
    "X-Api-Key": "leakapikey",
    "Cookie": "sid=leakcookie",
    "Idempotency-Key": "leakidem",
}


def assert_clean(where: str, texts: list[str]) -> None:
    assert texts, f"nothing was collected from {where}: the check would prove nothing"
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into {where}: {text!r}"


def exception_texts(exc: BaseException) -> list[str]:
    texts = []
    seen: BaseException | None = exc
    while seen is not None:
        texts += [str(seen), repr(seen), *map(str, seen.args)]
        seen = seen.__cause__ or seen.__context__
    return texts


class MovingClock(FakeClock):
    """A ``FakeClock`` that also moves with real time. A sync transport cannot
    cut a blocking read with a timer: it cuts each wait to the time left before
    the deadline and asks its clock whether the deadline has passed, so its
    clock must move while the read waits (the async ones cut it with a timer)."""

    def __init__(self) -> None:
        super().__init__()
        self.origin = time.monotonic()

    def __call__(self) -> float:
        return self.now + (time.monotonic() - self.origin)


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[FaultServer, FaultServer, int]]:
    with start_faults() as main, start_faults() as narrow, closed_port() as refused:
        yield main, narrow, refused


async def test_no_secret_leaks_under_any_fault(
    binding: Binding,
    upstreams: tuple[FaultServer, FaultServer, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    main, narrow, refused = upstreams
    clock = MovingClock()
    main.reset()
    narrow.reset()
    caplog.set_level(logging.DEBUG)
    api, http = binding.api, binding.http
    events: list[Event] = []

    def raising_listener(event: Event) -> None:
        if isinstance(event, StateChanged):
            raise RuntimeError(f"listener choked on {event!r}")

    listeners: list[object] = [events.append, raising_listener]
    registry = None
    if PrometheusMetrics is not None:
        registry = CollectorRegistry()
        listeners.append(PrometheusMetrics(registry))
    reader = None
    if OpenTelemetryMetrics is not None:
        reader = InMemoryMetricReader()
        listeners.append(OpenTelemetryMetrics(MeterProvider(metric_readers=[reader])))

    refused_key = f"127.0.0.1:{refused}"
    transport = binding.transport(
        binding.inner_http(),
        policy=api.Policy(
            breaker=api.BreakerPolicy(failure_threshold=2, recovery_timeout=5.0),
            retry=api.RetryPolicy(
                attempts=3,
                wait=tenacity.wait_fixed(0.5),
                budget=api.RetryBudget(ratio=0.0, min_per_second=0.2, window=10.0),
            ),
        ),
        hosts={f"127.0.0.1:{narrow.port}": api.Policy(max_concurrency=1)},
        listeners=listeners,
        stale_cache=api.StaleCache(),
        clock=clock,
        sleep=clock.sleep,
    )

    def broken_fallback(request: Any, error: Exception) -> Any:
        return f"not a response for {request.url.host}"

    transport.fallback(refused_key, broken_fallback)

    errors: list[BaseException] = []

    def url(server: FaultServer | int, path: str) -> str:
        port = server if isinstance(server, int) else server.port
        sep = "&" if "?" in path else "?"
        return f"http://leakuser:leakpass@127.0.0.1:{port}{path}{sep}token=leakquery"

    async with binding.client(
        transport, timeout=http.Timeout(2.0, read=0.2), headers=HEADERS
    ) as client:

        async def call(
            target: str, method: str = "GET", extensions: dict[str, object] | None = None
        ) -> None:
            try:
                async with client.stream(
                    method, target, content=b"body", extensions=extensions
                ) as response:
                    await response.aread()
            except Exception as exc:
                errors.append(exc)

        for path in (
            "/status/503?retry_after=999",  # a Retry-After too long to honour
            "/status/503",  # retried, budget spent, then the circuit opens
            "/ok",  # rejected: CircuitOpenError
        ):
            await call(url(main, path))
        clock.advance(5.0)
        await call(url(main, "/ok"))  # half-open, the probe closes the circuit
        for path in ("/hang", "/reset", "/drip?n=3&interval=0.5", "/garbage", "/close"):
            await call(url(main, path), method="POST")  # not retried: one attempt each
            transport.breaker(main.url).reset()
        await call(
            url(main, "/hang"),
            extensions={"resilient_http.retry": api.RetryPolicy(attempts=2, deadline=0.05)},
        )
        for _ in range(3):  # refused twice, then the fallback answers wrongly
            await call(url(refused, "/ok"))
        async with anyio.create_task_group() as tg:  # one call holds the only slot
            tg.start_soon(call, url(narrow, "/hang"))
            while narrow.total_hits("/hang") == 0:
                await anyio.sleep(0.005)
            await call(url(narrow, "/ok"))
        transport.breaker(url(main, "/")).force_open()
        await call(url(main, "/ok"))
        snapshot = json.dumps(transport.snapshot())

    kinds = {type(e).__name__ for e in errors}
    assert {api.CircuitOpenError.__name__, api.BulkheadFullError.__name__, "TypeError"} <= kinds
    assert {"ReadTimeout", "ConnectError", "ReadError", "RemoteProtocolError"} <= kinds
    assert "DeadlineExceeded" in kinds
    assert all(isinstance(e, http.HTTPError | TypeError) for e in errors), (
        f"an error of another library: {errors!r}"
    )
    assert_clean("exception messages", [t for e in errors for t in exception_texts(e)])

    ours = [r for r in caplog.records if r.name.startswith("resilient_http")]
    assert {"DEBUG", "INFO", "WARNING", "ERROR"} <= {r.levelname for r in ours}
    formatter = logging.Formatter()
    assert_clean("log records", [formatter.format(r) for r in ours])
    assert_clean("events", [repr(e) for e in events])
    assert_clean("snapshot", [snapshot])
    assert f"127.0.0.1:{main.port}" in snapshot

    if registry is not None:
        labels = [
            value
            for metric in registry.collect()
            for sample in metric.samples
            for value in sample.labels.values()
        ]
        assert f"127.0.0.1:{main.port}" in labels
        assert_clean("Prometheus labels", labels)
    if reader is not None:
        data = reader.get_metrics_data()
        assert data is not None
        attributes = [
            str(value)
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            for point in metric.data.data_points
            for value in (point.attributes or {}).values()
        ]
        assert_clean("OpenTelemetry attributes", attributes)


@pytest.mark.parametrize(
    "target",
    [
        "ftp://leakuser:leakpass@files.example/x?token=leakquery",
        "http://leakuser:leakpass@/x?token=leakquery",
        "mailto:leakuser@mail.example?token=leakquery",
        "http://./?token=leakquery",
    ],
)
def test_an_unusable_url_is_refused_without_echoing_it(binding: Binding, target: str) -> None:
    transport = binding.transport(binding.mock(lambda request: binding.response(200)))
    with pytest.raises(ValueError, match="breaker") as info:
        transport.breaker(binding.http.URL(target))
    assert_clean("exception messages", exception_texts(info.value))
