"""``BreakerPolicy(classify=...)``: what counts as a failure is the user's call
(README, "Your own classification"): a gateway that answers 200 with errors,
a 429 that means "down", an exception that is the caller's fault.

The binding-independent tests live in tests/contract/test_classify.py (every
binding); here stays the policy's own validation."""

from __future__ import annotations

import pytest

from resilient_http import BreakerPolicy


def test_a_hook_that_is_not_callable_is_refused() -> None:
    with pytest.raises(TypeError, match=r"BreakerPolicy\.classify.*callable.*42"):
        BreakerPolicy(classify=42)  # type: ignore[arg-type]
