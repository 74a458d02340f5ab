"""The entry point: ``python -m benchmarks [--quick] [--rounds N] [--out DIR] ...``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import shlex
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from . import _sections
from ._measure import Section
from ._report import machine, markdown, update_readme, write_chart, write_json

HERE = Path(__file__).resolve().parent
SECTIONS = (
    "success_in_process",
    "success_real_server",
    "rejection",
    "concurrency",
    "memory",
    "production",
    "sync",
    "hedging",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Measure resilient_http against bare httpx and its peers in one run "
            "(interleaved rounds, medians, ratios against the same run's baseline)."
        ),
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny counts: checks that it runs, not how fast"
    )
    parser.add_argument(
        "--rounds", type=int, help="interleaved rounds per section (default 40; 3 with --quick)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "results",
        help="directory for latest.json, latest.md and latest.png (default benchmarks/results)",
    )
    parser.add_argument(
        "--only", action="append", choices=SECTIONS, help="run only this section (repeatable)"
    )
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="instead of measuring, print where the time of one production configuration "
        "goes (cProfile; NAME: part of a production row's name, e.g. 'full')",
    )
    parser.add_argument(
        "--profile-calls",
        type=int,
        default=3000,
        help="GETs profiled with --profile (default 3000)",
    )
    parser.add_argument(
        "--instructions",
        metavar="NAME",
        nargs="+",
        help="instead of measuring, count the instructions one transport call of each named "
        "production configuration executes, and bare httpx's (callgrind: exact from run to "
        "run, whatever the load; needs valgrind)",
    )
    parser.add_argument(
        "--instruction-calls",
        type=int,
        default=3000,
        help="calls counted with --instructions (default 3000)",
    )
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="write the table and chart into benchmarks/README.md",
    )
    return parser


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def _run(
    settings: _sections.Settings, only: Sequence[str], port: int | None, why: str | None
) -> list[Section]:
    sections: list[Section] = []

    async def step(key: str, make: object) -> None:
        if key not in only:
            return
        _progress(f"measuring {key} ...")
        started = time.perf_counter()
        assert callable(make)
        section: Section = await make()
        section.params["seconds"] = round(time.perf_counter() - started, 1)
        sections.append(section)

    await step("success_in_process", lambda: _sections.success_in_process(settings))
    await step("success_real_server", lambda: _sections.success_real_server(settings, port, why))
    await step("rejection", lambda: _sections.rejection(settings, port))
    await step("concurrency", lambda: _sections.concurrency(settings))
    await step("memory", lambda: _sections.memory(settings))
    await step("production", lambda: _sections.production(settings))
    await step("sync", lambda: _sections.sync(settings))
    await step("hedging", lambda: _sections.hedging(settings, port, why))
    return sections


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.profile is not None:
        from ._profile import profile

        print(profile(args.profile, args.profile_calls))
        return 0
    if args.instructions is not None:
        from ._instructions import report

        print(report(args.instructions, args.instruction_calls))
        return 0
    settings = _sections.QUICK if args.quick else _sections.FULL
    if args.rounds is not None:
        if args.rounds < 1:
            _parser().error(f"--rounds must be >= 1, got {args.rounds}")
        settings = dataclasses.replace(settings, rounds=args.rounds)
    only = tuple(args.only or SECTIONS)
    # Circuits are opened on purpose here: keep their WARNING lines off the terminal.
    logging.getLogger("resilient_http").addHandler(logging.NullHandler())
    # The peers' own deprecation noise is not what is measured here.
    for module in ("aiobreaker", "purgatory", "pybreaker", "interlock", "httpx_retries"):
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)

    info = machine()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    needs_server = {"success_real_server", "rejection", "hedging"} & set(only)
    why = _sections.uvicorn_missing() if needs_server else "not requested"
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        port: int | None = None
        if needs_server and why is None:
            try:
                port = stack.enter_context(_sections.server_process())
            except Exception as exc:
                why = f"the server did not start: {exc}"
        if why and needs_server:
            _progress(f"no real server: {why}")
        sections = asyncio.run(_run(settings, only, port, why))
    for section in sections:
        section.judged = not args.quick
    info["seconds"] = round(time.perf_counter() - started, 1)
    info["load_average_end"] = machine()["load_average"]

    command = "python -m benchmarks" + (
        " " + shlex.join(argv if argv is not None else sys.argv[1:])
        if (argv if argv is not None else sys.argv[1:])
        else ""
    )
    block = markdown(info, sections, command)
    print(block)
    (out / "latest.md").write_text(block + "\n", encoding="utf-8")
    write_json(out / "latest.json", info, dataclasses.asdict(settings), sections)
    chart = out / "latest.png"
    skipped = write_chart(chart, info, sections)
    if skipped:
        _progress(skipped)
        chart.unlink(missing_ok=True)
    else:
        _progress(f"chart: {chart}")
    _progress(f"results: {out / 'latest.json'}")
    if args.update_readme:
        readme = HERE / "README.md"
        try:
            relative = chart.resolve().relative_to(HERE).as_posix()
        except ValueError:
            relative = chart.resolve().as_posix()
        update_readme(readme, block, None if skipped else relative)
        _progress(f"updated {readme}")
    return 0
