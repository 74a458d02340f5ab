"""Mutation testing of the decision-making modules (``tox -e mutation``).

Runs mutmut (configured in pyproject.toml, ``[tool.mutmut]``) on a copy of the
package, the tests and pyproject.toml in a scratch folder (mutmut writes its
``mutants/`` tree and caches next to the code it mutates; the project's own
tree stays untouched), then prints the score of each module and, last::

    mutation score: K/N killed (P%)

A mutant counts as killed when a test fails (or times out) with it in place.
The mutants listed in ``tests/mutation/equivalent.txt`` (by function and
mutated code, each with the reason it cannot change behaviour) are left out
of N. Exits non-zero when the score is below ``--min-score`` (90%) or when a
mutant of the stale cache's privacy and byte-accounting guards survives.

    python tests/mutation/run.py [--workdir DIR] [--reuse] [--max-children N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
EQUIVALENT = HERE / "equivalent.txt"

#: What is mutated (pyproject.toml ``only_mutate`` says the same), and its name in the report.
MODULES = {
    "resilient_http/_breaker.py": "breaker",
    "resilient_http/_retry.py": "retry and budget",
    "resilient_http/_hosts.py": "hosts and patterns",
    "resilient_http/_cache.py": "stale cache",
    "resilient_http/_hedging.py": "planner: hedging",
    "resilient_http/_groups.py": "planner: endpoint groups",
    "resilient_http/_endpoints.py": "planner: endpoints",
    "resilient_http/redis/_scripts.py": "redis scripts (Python side)",
}

#: Why a module has no mutants: mutmut mutates the bodies of functions only.
NO_MUTANTS = {
    "resilient_http/redis/_scripts.py": "Lua sources held in module constants, no Python function",
}

#: The stale cache's guards (what it refuses to store or serve, and its byte
#: count): every one of their mutants must be killed.
CACHE_GUARDS = (
    "resilient_http._cache.x__directives__",
    "resilient_http._cache.x__held__",
    "resilient_http._cache.x__key__",
    "resilient_http._cache.x__refuses__",
    "resilient_http._cache.x__forbids_storing__",
    "resilient_http._cache.x__answer_vary__",
    "resilient_http._cache.x__judge__",
    "resilient_http._cache.x__varied__",
    "resilient_http._cache.xǁStaleCacheǁstorable__",
    "resilient_http._cache.xǁStaleCacheǁkeep__",
    "resilient_http._cache.xǁStaleCacheǁstore__",
    "resilient_http._cache.xǁStaleCacheǁ_add__",
    "resilient_http._cache.xǁStaleCacheǁ_shrink__",
    "resilient_http._cache.xǁStaleCacheǁfind__",
    "resilient_http._cache.xǁStaleCacheǁclear__",
)

#: mutmut's exit codes (mutmut.stats.status_by_exit_code) that mean "a test noticed".
KILLED = {1, 3, 24, -24, 36, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}

COPIED = ("resilient_http", "tests", "pyproject.toml")
IGNORED = shutil.ignore_patterns(
    "__pycache__", "*.pyc", ".hypothesis", ".pytest_cache", "mutants", ".mypy_cache"
)


@dataclass
class Tally:
    killed: list[str] = field(default_factory=list)
    survived: list[str] = field(default_factory=list)
    equivalent: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.killed) + len(self.survived)


def percent(killed: int, total: int) -> float:
    return 100.0 if total == 0 else 100.0 * killed / total


def load_equivalent(path: Path = EQUIVALENT) -> dict[tuple[str, str], str]:
    """``function | mutated code | reason`` per line (``#`` starts a comment).

    A mutant is named by its function and the code the mutation wrote (its
    ``+`` lines in ``mutmut show``, stripped, joined with `` / ``), not by its
    number, which changes whenever the function does."""
    found: dict[tuple[str, str], str] = {}
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        # the code may hold " | " itself (a union): the function is what comes
        # before the first separator, the reason what follows the last
        function, _, rest = line.partition(" | ")
        code, _, reason = rest.rpartition(" | ")
        parts = [function.strip(), code.strip(), reason.strip()]
        if not all(parts):
            raise SystemExit(f"{path}:{number}: expected 'function | mutated code | reason'")
        function, code, reason = parts
        found[(function, code)] = reason
    return found


def describe(workdir: Path, names: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Each mutant's function and the code its mutation wrote; when two mutants
    of a function write the same code, with `` @after `` and the line before
    the change (``raise ValueError(None) @after if not host:``)."""
    names = list(names)
    if not names:
        return {}
    here = Path.cwd()
    os.chdir(workdir)  # mutmut reads its configuration and mutants from there
    try:
        from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant

        found: dict[str, tuple[str, str, str]] = {}
        for name in names:
            lines = get_diff_for_mutant(name, path=find_mutant(name).path).splitlines()
            body = [line for line in lines if not line.startswith(("+++", "---", "@@"))]
            added = [line[1:].strip() for line in body if line.startswith("+")]
            first = next(i for i, line in enumerate(body) if line[:1] in "+-")
            before = [line[1:].strip() for line in body[:first] if line[1:].strip()]
            function = name.rpartition("__mutmut_")[0]
            found[name] = (function, " / ".join(added), before[-1] if before else "")
        seen = Counter((function, wrote) for function, wrote, _ in found.values())
        return {
            name: (function, wrote if seen[function, wrote] == 1 else f"{wrote} @after {after}")
            for name, (function, wrote, after) in found.items()
        }
    finally:
        os.chdir(here)


def prepare(workdir: Path, reuse: bool) -> None:
    if workdir.exists() and not reuse:
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source, target = ROOT / name, workdir / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=IGNORED, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)


def run_mutmut(workdir: Path, max_children: int, names: Iterable[str]) -> int:
    log = workdir / "mutmut.log"
    env = dict(os.environ, PYTHONHASHSEED="0")
    env.pop("PYTHONDEVMODE", None)  # dev mode slows every forked test run down
    command = ["mutmut", "run", "--max-children", str(max_children), *names]
    print(f"{' '.join(command)} in {workdir} (output: {log})", flush=True)
    with log.open("w") as out:
        done = subprocess.run(command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        print(log.read_text("utf-8", "replace")[-4000:])
    return done.returncode


def results(workdir: Path) -> dict[str, dict[str, int | None]]:
    """The exit code of each mutant's test run, per mutated file."""
    found: dict[str, dict[str, int | None]] = {}
    for module in MODULES:
        meta = workdir / "mutants" / (module + ".meta")
        found[module] = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
    return found


def report(
    codes: dict[str, dict[str, int | None]],
    equivalent: dict[tuple[str, str], str],
    described: dict[str, tuple[str, str]],
) -> bool:
    tallies = {module: Tally() for module in codes}
    guards = Tally()
    unused = set(equivalent)
    for module, by_name in codes.items():
        tally = tallies[module]
        for name, code in sorted(by_name.items()):
            if described.get(name) in equivalent:
                unused.discard(described[name])
                tally.equivalent.append(name)
                if code in KILLED:  # a test failed with a mutant that changes nothing
                    print(f"  listed as equivalent, yet killed (a flaky test?): {name}")
                continue
            (tally.killed if code in KILLED else tally.survived).append(name)
            if name.startswith(CACHE_GUARDS):
                (guards.killed if code in KILLED else guards.survived).append(name)
    for function, wrote in sorted(unused):
        print(f"  equivalent.txt names no surviving mutant (stale?): {function} | {wrote}")

    print()
    print(f"{'module':44} {'killed':>7} {'of':>5} {'equiv':>6} {'score':>7}")
    for module, tally in tallies.items():
        label = f"{MODULES[module]} ({Path(module).name})"
        if not tally.total and not tally.equivalent:
            print(f"{label:44} {'no mutants':>28}  ({NO_MUTANTS.get(module, '')})")
            continue
        score = percent(len(tally.killed), tally.total)
        print(
            f"{label:44} {len(tally.killed):>7} {tally.total:>5} "
            f"{len(tally.equivalent):>6} {score:>6.1f}%"
        )
    survivors = [name for tally in tallies.values() for name in tally.survived]
    if survivors:
        print()
        print(f"{len(survivors)} surviving mutants (mutmut show NAME, in the work folder):")
        for name in survivors:
            function, wrote = described.get(name, ("?", "?"))
            print(f"  {name} ({status(codes, name)}): {function} | {wrote}")
    print()
    guard_score = percent(len(guards.killed), guards.total)
    guarded = f"{len(guards.killed)}/{guards.total}"
    print(f"stale cache privacy guards: {guarded} killed ({guard_score:.1f}%)")
    killed = sum(len(tally.killed) for tally in tallies.values())
    total = sum(tally.total for tally in tallies.values())
    score = percent(killed, total)
    print(f"mutation score: {killed}/{total} killed ({score:.1f}%)")
    return not guards.survived and score >= ARGS.min_score


def status(codes: dict[str, dict[str, int | None]], name: str) -> str:
    for by_name in codes.values():
        if name in by_name:
            code = by_name[name]
            if code in SURVIVED:
                return "survived"
            if code in NO_TESTS:
                return "no test covers it"
            return "not checked" if code is None else f"exit code {code}"
    return "?"


def main(argv: list[str] | None = None) -> int:
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir", type=Path, help="scratch folder (default: a new temporary one)"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep the work folder's mutants and results"
    )
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--min-score", type=float, default=90.0)
    parser.add_argument("mutants", nargs="*", help="only (re)run these mutants (globs allowed)")
    ARGS = parser.parse_args(argv)
    equivalent = load_equivalent()
    workdir = ARGS.workdir or Path(tempfile.mkdtemp(prefix="resilient-http-mutation-"))
    started = time.monotonic()
    prepare(workdir.resolve(), ARGS.reuse)
    code = run_mutmut(workdir.resolve(), ARGS.max_children, ARGS.mutants)
    if code != 0:
        print(f"mutmut failed (exit code {code})")
        return code
    print(f"mutmut took {time.monotonic() - started:.0f} s")
    codes = results(workdir.resolve())
    every = [name for by_name in codes.values() for name in by_name]
    ok = report(codes, equivalent, describe(workdir.resolve(), every))
    return 0 if ok else 1


ARGS: argparse.Namespace

if __name__ == "__main__":
    sys.exit(main())
