"""Writes the generated bindings from the one hand-written source.

    python -m tests.codegen           # regenerate
    python -m tests.codegen --check   # exit 1 if a generated file is stale (tox -e lint)

Two steps, in this order:

1. **sync from async** (as httpcore's ``unasync``): every module of
   ``resilient_http/_async`` but ``_io.py`` and ``__init__.py`` becomes its
   twin in ``resilient_http/_sync`` by token substitution (``async def`` ->
   ``def``, ``await x`` -> ``x``, ``AsyncByteStream`` -> ``SyncByteStream``,
   ``ResilientTransport`` -> ``SyncResilientTransport``...). The IO that differs
   in kind (anyio cancel scopes vs threads and locks) is written by hand in each
   ``_io.py``.
2. **httpx2 from httpx**: every module that touches httpx's classes (the two
   bindings, the exceptions, which errors are failures, the ready-made fallback)
   becomes its twin in ``resilient_http/httpx2`` by naming ``httpx2`` wherever
   the source names ``httpx``, and importing the httpx2 twins of those
   modules. Everything else (breaker, policies, events, hosts, cache, stores)
   is shared, the very same objects.

Generated files start with a line that says so; edit the source, then rerun.
The output goes through ``ruff check --fix-only`` and ``ruff format``, so it is
the code a person would have written and ``tox -e lint`` holds it to the same
rules.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "resilient_http"

#: Hand-written in both bindings.
_NOT_GENERATED = {"_io.py", "__init__.py"}

#: Word for word, async -> sync (whole words only).
_UNASYNC_WORDS = {
    "AsyncIterator": "Iterator",
    "AsyncIterable": "Iterable",
    "AsyncByteStream": "SyncByteStream",
    "AsyncBaseTransport": "BaseTransport",
    "AsyncHTTPTransport": "HTTPTransport",
    "AsyncClient": "Client",
    "handle_async_request": "handle_request",
    "aclose": "close",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "StopAsyncIteration": "StopIteration",
    "ResilientTransport": "SyncResilientTransport",
    "ResilientClient": "SyncResilientClient",
    "StateStore": "SyncStateStore",
    "_async": "_sync",
}
_UNASYNC_PATTERNS = [
    (re.compile(r"\basync (def|for|with)\b"), r"\1"),
    (re.compile(r"\bawait "), ""),
    (re.compile(r"\b(" + "|".join(map(re.escape, _UNASYNC_WORDS)) + r")\b"), None),
]

#: The modules with an httpx2 twin, besides the two bindings.
_FLAVOURED = ("_exceptions", "_failures", "_fallbacks")
_HTTPX2_MODULES = re.compile(
    r"\bresilient_http\.(" + "|".join((*_FLAVOURED, "_async", "_sync")) + r")\b"
)


def _header(source: Path) -> str:
    relative = source.relative_to(ROOT).as_posix()
    return f"# Generated from {relative} by tests/codegen.py: do not edit.\n"


def unasync(text: str) -> str:
    for pattern, replacement in _UNASYNC_PATTERNS:
        if replacement is None:
            text = pattern.sub(lambda match: _UNASYNC_WORDS[match.group(1)], text)
        else:
            text = pattern.sub(replacement, text)
    return text


def to_httpx2(text: str) -> str:
    text = _HTTPX2_MODULES.sub(r"resilient_http.httpx2.\1", text)
    return re.sub(r"\bhttpx\b(?!2)", "httpx2", text)


def _strip_header(text: str) -> str:
    return text.split("\n", 1)[1] if text.startswith("# Generated from ") else text


def _tidy(text: str, path: Path) -> str:
    """What ruff makes of the text, as if it were at ``path``."""
    for command in (
        ["ruff", "check", "--fix-only", "--exit-zero", "--quiet"],
        ["ruff", "format", "--quiet"],
    ):
        text = subprocess.run(
            [*command, "--stdin-filename", str(path), "-"],
            input=text,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
    return text


def planned() -> dict[Path, str]:
    """Every generated file and the text it must have."""
    files: dict[Path, tuple[Path, str]] = {}  # target -> (source it came from, text)
    for source in sorted((PACKAGE / "_async").glob("*.py")):
        if source.name not in _NOT_GENERATED:
            files[PACKAGE / "_sync" / source.name] = (source, unasync(source.read_text()))
    bound = [PACKAGE / f"{name}.py" for name in _FLAVOURED]
    bound += sorted((PACKAGE / "_async").glob("*.py"))
    bound += sorted({*files, *(PACKAGE / "_sync" / name for name in _NOT_GENERATED)})
    for source in bound:
        target = PACKAGE / "httpx2" / source.relative_to(PACKAGE)
        if source in files:  # a generated sync module: from what it was made of
            origin, text = files[source]
        else:
            origin, text = source, source.read_text()
        files[target] = (origin, to_httpx2(_strip_header(text)))
    return {
        target: _header(origin) + _tidy(text, target) for target, (origin, text) in files.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say what is stale")
    args = parser.parse_args(argv)
    plan = planned()
    stale = [path for path, text in plan.items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run: python -m tests.codegen)")
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(plan[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
