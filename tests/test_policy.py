"""Policies: DESIGN defaults, immutability, and validation at construction."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import tenacity

from resilient_http import (
    BreakerPolicy,
    Policy,
    RejectedError,
    ResilientClient,
    ResilientTransport,
    RetryBudget,
    RetryPolicy,
)
from resilient_http._hosts import shown


def handler(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200)


def fallback(request: httpx.Request, error: RejectedError) -> httpx.Response:
    return httpx.Response(200)


# -- defaults ------------------------------------------------------------------------


def test_breaker_policy_defaults_match_design() -> None:
    policy = BreakerPolicy()
    assert policy.failure_threshold == 5
    assert policy.recovery_timeout == 30.0
    assert policy.half_open_max_calls == 1
    assert policy.success_threshold == 1
    assert policy.failure_statuses == frozenset(range(500, 600))
    assert 499 not in policy.failure_statuses
    assert 404 not in policy.failure_statuses


def test_retry_policy_defaults_match_design() -> None:
    policy = RetryPolicy()
    assert policy.attempts == 3
    assert policy.methods == {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}
    assert policy.statuses == {429, 502, 503, 504}
    assert policy.respect_retry_after is True
    assert policy.max_retry_after == 60.0
    assert isinstance(policy.wait, tenacity.wait.wait_base)


def test_default_wait_is_exponential_with_full_jitter() -> None:
    """AWS "full jitter": each wait is uniform between 0 and a growing cap."""
    wait = RetryPolicy().wait
    state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
    caps = []
    for attempt in (1, 2, 3, 4):
        state.attempt_number = attempt
        samples = [wait(state) for _ in range(300)]
        assert min(samples) >= 0.0
        assert min(samples) < max(samples)  # jittered, not fixed
        caps.append(max(samples))
    assert caps == sorted(caps)  # grows with the attempt number
    assert caps[-1] > 2 * caps[0]


def test_policy_defaults() -> None:
    policy = Policy()
    assert policy.breaker == BreakerPolicy()
    assert isinstance(policy.retry, RetryPolicy)
    assert policy.fallback is None


def test_transport_default_policy_is_the_design_default() -> None:
    transport = ResilientTransport(httpx.MockTransport(handler))
    breaker = transport.breaker("api.example.com")
    assert breaker.policy == BreakerPolicy()


# -- immutability --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        (BreakerPolicy(), "failure_threshold"),
        (RetryPolicy(), "attempts"),
        (Policy(), "fallback"),
        (RetryBudget(), "ratio"),
    ],
)
def test_policies_are_frozen(obj: object, field: str) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, field, 1)


def test_policies_are_hashable_and_compare_by_value() -> None:
    wait = tenacity.wait_none()
    assert BreakerPolicy(failure_threshold=3) == BreakerPolicy(failure_threshold=3)
    assert RetryPolicy(wait=wait) == RetryPolicy(
        wait=wait, methods=["get", "head", "options", "trace", "put", "delete"]
    )
    assert hash(BreakerPolicy()) == hash(BreakerPolicy())


def test_collections_are_normalised_to_frozensets() -> None:
    retry = RetryPolicy(methods=["get", "Post"], statuses=[503, 503, 429])
    assert retry.methods == frozenset({"GET", "POST"})
    assert retry.statuses == frozenset({429, 503})
    assert BreakerPolicy(failure_statuses=range(500, 503)).failure_statuses == {500, 501, 502}


def test_numbers_are_stored_as_floats() -> None:
    assert type(BreakerPolicy(recovery_timeout=10).recovery_timeout) is float
    assert type(RetryPolicy(max_retry_after=5).max_retry_after) is float


def test_any_tenacity_wait_strategy_is_accepted() -> None:
    for wait in (
        tenacity.wait_none(),
        tenacity.wait_fixed(1),
        tenacity.wait_exponential_jitter(multiplier=0.1, max=5),
        tenacity.wait_random_exponential(multiplier=1, max=10),
        tenacity.wait_fixed(1) + tenacity.wait_random(0, 1),
        tenacity.wait_chain(tenacity.wait_fixed(1), tenacity.wait_fixed(2)),
    ):
        assert RetryPolicy(wait=wait).wait is wait


def test_edge_values_that_are_valid() -> None:
    BreakerPolicy(failure_threshold=1, recovery_timeout=0, success_threshold=1)
    RetryPolicy(attempts=1, max_retry_after=0, statuses=[], methods=[])
    Policy(fallback=fallback)
    Policy(fallback=lambda request, error: httpx.Response(503))


# -- invalid settings ----------------------------------------------------------------


def _message(*parts: str) -> str:
    """A regex matching a message that contains every part, in any order."""
    return "".join(f"(?=.*{re.escape(p)})" for p in parts)


# Typed as Any: these calls pass wrong types on purpose, as untyped callers would.
BP: Any = BreakerPolicy
RP: Any = RetryPolicy
P: Any = Policy
RB: Any = RetryBudget

INVALID: list[tuple[Callable[[], object], type[Exception], tuple[str, ...]]] = [
    # thresholds below 1
    (lambda: BP(failure_threshold=0), ValueError, ("failure_threshold", "0")),
    (lambda: BP(failure_threshold=-3), ValueError, ("failure_threshold", "-3")),
    (lambda: BP(half_open_max_calls=0), ValueError, ("half_open_max_calls", "0")),
    (lambda: BP(success_threshold=0), ValueError, ("success_threshold", "0")),
    # negative or NaN timeouts
    (lambda: BP(recovery_timeout=-1), ValueError, ("recovery_timeout", "-1")),
    (
        lambda: BP(recovery_timeout=float("nan")),
        ValueError,
        ("recovery_timeout", "nan"),
    ),
    (lambda: RP(max_retry_after=-0.5), ValueError, ("max_retry_after", "-0.5")),
    (lambda: RP(deadline=-2), ValueError, ("deadline", "-2")),
    (lambda: P(max_wait=-1), ValueError, ("max_wait", "-1")),
    # attempts below 1
    (lambda: RP(attempts=0), ValueError, ("attempts", "0")),
    (lambda: RP(attempts=-1), ValueError, ("attempts", "-1")),
    # bools and strings where numbers go
    (lambda: BP(failure_threshold=True), TypeError, ("failure_threshold", "True")),
    (lambda: BP(failure_threshold="5"), TypeError, ("failure_threshold", "'5'")),
    (lambda: BP(failure_threshold=2.5), TypeError, ("failure_threshold", "2.5")),
    (lambda: BP(recovery_timeout="30"), TypeError, ("recovery_timeout", "'30'")),
    (lambda: BP(recovery_timeout=False), TypeError, ("recovery_timeout", "False")),
    (lambda: RP(attempts=True), TypeError, ("attempts", "True")),
    (lambda: RP(attempts="3"), TypeError, ("attempts", "'3'")),
    (lambda: RP(max_retry_after="60"), TypeError, ("max_retry_after", "'60'")),
    (lambda: RP(respect_retry_after="yes"), TypeError, ("respect_retry_after", "yes")),
    # bad statuses and methods
    (lambda: BP(failure_statuses=[500, 600]), ValueError, ("failure_statuses", "600")),
    (lambda: BP(failure_statuses=[99]), ValueError, ("failure_statuses", "99")),
    (lambda: BP(failure_statuses=["500"]), ValueError, ("failure_statuses", "'500'")),
    (lambda: BP(failure_statuses=[True]), ValueError, ("failure_statuses", "True")),
    (lambda: BP(failure_statuses=500), TypeError, ("failure_statuses", "500")),
    (lambda: RP(statuses="503"), TypeError, ("statuses", "'503'")),
    (lambda: RP(statuses=[503, 1000]), ValueError, ("statuses", "1000")),
    (lambda: RP(methods="GET"), TypeError, ("methods", "'GET'")),
    (lambda: RP(methods=["GET", "PO ST"]), ValueError, ("methods", "'PO ST'")),
    (lambda: RP(methods=[1]), ValueError, ("methods", "1")),
    # non-callables where a callable goes
    (lambda: RP(wait=2), TypeError, ("wait", "2")),
    (lambda: RP(wait="exponential"), TypeError, ("wait", "'exponential'")),
    (lambda: P(fallback="cached"), TypeError, ("fallback", "'cached'")),
    (lambda: P(fallback=httpx.Response(200)), TypeError, ("fallback", "Response")),
    # nested values of the wrong kind
    (lambda: P(breaker=RetryPolicy()), TypeError, ("Policy.breaker", "RetryPolicy(")),
    (lambda: P(retry=BreakerPolicy()), TypeError, ("Policy.retry", "BreakerPolicy(")),
    (lambda: P(breaker={"failure_threshold": 3}), TypeError, ("Policy.breaker",)),
    (lambda: RP(budget=0.2), TypeError, ("budget", "0.2")),
    (lambda: P(max_concurrency=0), ValueError, ("max_concurrency", "0")),
    (lambda: RB(ratio=-0.1), ValueError, ("ratio", "-0.1")),
]


@pytest.mark.parametrize(("build", "error", "parts"), INVALID)
def test_invalid_setting_fails_at_construction_naming_field_and_value(
    build: Callable[[], object], error: type[Exception], parts: tuple[str, ...]
) -> None:
    with pytest.raises(error, match=_message(*parts)):
        build()


TRANSPORT_INVALID: list[tuple[dict[str, Any], type[Exception], tuple[str, ...]]] = [
    ({"policy": BreakerPolicy()}, TypeError, ("policy", "BreakerPolicy(")),
    ({"policy": {"breaker": None}}, TypeError, ("policy",)),
    ({"hosts": {"api.example.com": RetryPolicy()}}, TypeError, ("api.example.com", "RetryPolicy")),
    ({"hosts": {"api.example.com": None}}, TypeError, ("hosts['api.example.com']", "None")),
    ({"hosts": {"https://api.example.com": Policy()}}, ValueError, ("https://api.example.com",)),
    ({"hosts": {"api.example.com/v1": Policy()}}, ValueError, ("'api.example.com...'",)),
    ({"hosts": {"api.example.com:0": Policy()}}, ValueError, ("api.example.com:0",)),
    ({"hosts": {"api.example.com:99999": Policy()}}, ValueError, ("api.example.com:99999",)),
    ({"hosts": {"api.example.com:https": Policy()}}, ValueError, ("api.example.com:https",)),
    ({"hosts": {"api.*.com": Policy()}}, ValueError, ("api.*.com",)),
    ({"hosts": {"*example.com": Policy()}}, ValueError, ("*example.com",)),
    ({"hosts": {"*": Policy()}}, ValueError, ("'*'",)),
    ({"hosts": {"": Policy()}}, ValueError, ("''",)),
    ({"hosts": {" api.example.com": Policy()}}, ValueError, ("' api.example.com'",)),
    # (quoted without userinfo, path or query: README, "Logging and privacy")
    ({"hosts": {"user@api.example.com": Policy()}}, ValueError, ("'...@api.example.com'",)),
    ({"hosts": {"api.example.com?x=1": Policy()}}, ValueError, ("'api.example.com...'",)),
    ({"hosts": {"::1": Policy()}}, ValueError, ("'::1'",)),
    ({"hosts": {"[::1": Policy()}}, ValueError, ("[::1",)),
    ({"hosts": {"[::1]x": Policy()}}, ValueError, ("[::1]x",)),
    ({"hosts": {42: Policy()}}, TypeError, ("42",)),
    ({"max_hosts": 0}, ValueError, ("max_hosts", "0")),
    ({"max_hosts": True}, ValueError, ("max_hosts", "True")),
    ({"transport": httpx.HTTPTransport()}, TypeError, ("transport", "HTTPTransport")),
    ({"listeners": [42]}, TypeError, ("listeners", "42")),
    ({"clock": 0.0}, TypeError, ("clock", "0.0")),
    ({"sleep": 1}, TypeError, ("sleep", "1")),
    ({"store": object()}, TypeError, ("store", "StateStore", "object", "admit_probe")),
    ({"hosts": {".example.com": Policy()}}, ValueError, ("'.example.com'", "'*.example.com'")),
    (
        {"hosts": {"API.example.com": Policy(), "api.example.com": Policy()}},
        ValueError,
        ("'API.example.com'", "'api.example.com'", "same hosts"),
    ),
    (
        {"hosts": {"*.Example.com:443": Policy(), "*.example.com.:443": Policy()}},
        ValueError,
        ("same hosts",),
    ),
]


@pytest.mark.parametrize(("kwargs", "error", "parts"), TRANSPORT_INVALID)
def test_invalid_transport_setting_fails_at_construction(
    kwargs: dict[str, Any], error: type[Exception], parts: tuple[str, ...]
) -> None:
    with pytest.raises(error, match=_message(*parts)):
        ResilientTransport(**kwargs)


def test_invalid_client_setting_fails_at_construction() -> None:
    with pytest.raises(ValueError, match=_message("hosts", "http://bad")):
        ResilientClient(hosts={"http://bad": Policy()})
    with pytest.raises(TypeError, match=_message("policy", "3")):
        ResilientClient(policy=3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "pattern",
    [
        "",
        "http://api.example.com",
        "api.example.com/",
        "a.*.com",
        "*",
        "api.example.com:0",
        "a b",
        ".example.com",
        "api..example.com",
        "*..example.com",
    ],
)
def test_malformed_fallback_pattern_fails_at_registration(pattern: str) -> None:
    transport = ResilientTransport(httpx.MockTransport(handler))
    quoted = repr(shown(pattern))  # (no path, query or userinfo: README, "Logging and privacy")
    with pytest.raises(ValueError, match=_message("fallback", quoted)):
        transport.fallback(pattern, fallback)
    with pytest.raises(ValueError, match=_message("fallback", quoted)):
        transport.fallback(pattern)  # the decorator form fails before decorating


def test_fallback_pattern_of_the_wrong_type_is_a_type_error() -> None:
    transport = ResilientTransport(httpx.MockTransport(handler))
    with pytest.raises(TypeError, match=_message("fallback", "None")):
        transport.fallback(None, fallback)  # type: ignore[call-overload]


@pytest.mark.parametrize("fn", [None, 42, "fallback", httpx.Response(200)])
def test_non_callable_fallback_fails_at_registration(fn: object) -> None:
    transport = ResilientTransport(httpx.MockTransport(handler))
    register = transport.fallback("api.example.com")
    with pytest.raises(TypeError, match=_message("api.example.com", "callable", repr(fn))):
        register(fn)  # type: ignore[type-var]
    if fn is not None:
        with pytest.raises(TypeError, match=_message("api.example.com", "callable")):
            transport.fallback("api.example.com", fn)  # type: ignore[call-overload]


def test_validation_happens_before_any_request() -> None:
    """A bad policy in ``hosts`` is reported even if that host is never called."""
    with pytest.raises(ValueError, match=r"never\.example\.com:70000"):
        ResilientTransport(
            httpx.MockTransport(handler), hosts={"never.example.com:70000": Policy()}
        )
