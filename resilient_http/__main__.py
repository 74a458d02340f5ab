"""``python -m resilient_http demo [--duration SECONDS] [--json] [--replicas]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from ._demo import DEFAULT_DURATION, MAX_DURATION, MIN_DURATION

    parser = argparse.ArgumentParser(
        prog="python -m resilient_http",
        description="resilient_http: per-host circuit breakers, safe retries and fallbacks.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="a cascade, prevented, side by side",
        description="Start a flaky upstream on 127.0.0.1 (healthy, then an outage of hangs "
        "and 503s, then healthy again) and drive the same traffic through a plain "
        "httpx.AsyncClient and through a ResilientClient with a fallback.",
    )
    demo.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION,
        metavar="SECONDS",
        help=f"seconds of traffic, {MIN_DURATION:g} to {MAX_DURATION:g} "
        f"(default {DEFAULT_DURATION:g})",
    )
    demo.add_argument(
        "--json",
        action="store_true",
        help="print the summary as one JSON object on stdout (progress goes to stderr)",
    )
    demo.add_argument(
        "--replicas",
        action="store_true",
        help="run inventory as two replicas, only replica A sick: the plain client sends "
        "calls to both in turn, the ResilientClient calls one logical host whose endpoints "
        "are the replicas (Policy(endpoints=...)) and fails over to the healthy one",
    )
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # name the command's own usage, not the top level's
        demo.error(f"unrecognized arguments: {' '.join(unknown)}")
    from ._demo import run

    return run(args.duration, as_json=args.json, replicas=args.replicas)


if __name__ == "__main__":
    sys.exit(main())
