"""Benchmarks for resilient_http: overhead against bare httpx and the peers, same run.

Run ``python -m benchmarks`` (see ``benchmarks/README.md``). Peer packages and
matplotlib come from the ``bench`` extra; whatever is missing is reported as
"not installed" and the run goes on.
"""

from ._cli import main as main

__all__ = ["main"]
