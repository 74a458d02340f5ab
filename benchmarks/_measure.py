"""Interleaved rounds, medians and same-run ratios.

Every contender of a section is measured once per round, in alternating order
(A B C, C B A, A B C, ...), so that a slow minute on a shared machine hits all of
them alike. A row's ratio is the median over rounds of its value divided by the
baseline's value *in the same round*; its value is the median of its rounds.
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Batch", "Column", "Row", "Section", "Target", "interleave"]

#: One timed batch: returns the row's value for this round (µs per call, requests/s, ...).
Batch = Callable[[], Awaitable[float]]


def _quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


@dataclass
class Row:
    """One contender in one section."""

    name: str
    role: str  # "baseline", "ours", "peer"
    status: str = "ok"  # or "not installed", "n/a: ...", "error: ..."
    samples: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    note: str = ""
    #: Named figures for a section with :attr:`Section.columns` (``None``: not applicable).
    metrics: dict[str, float | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.samples)

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.ok else None

    @property
    def ratio(self) -> float | None:
        return statistics.median(self.ratios) if self.ok and self.ratios else None

    def fail(self, exc: BaseException) -> None:
        self.status = f"error: {type(exc).__name__}: {exc}"[:160]
        self.samples.clear()
        self.ratios.clear()
        self.metrics.clear()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "role": self.role,
            "status": self.status,
            "median": self.median,
            "ratio": self.ratio,
            "samples": [round(s, 4) for s in self.samples],
        }
        if self.ok and self.ratios:
            q1, q3 = _quartiles(self.ratios)
            data["ratio_q1"], data["ratio_q3"] = q1, q3
        if self.metrics:
            data["metrics"] = self.metrics
        if self.note:
            data["note"] = self.note
        return data


@dataclass(frozen=True)
class Target:
    """``row``'s ratio must be ``op`` ``limit`` (``"<="`` or ``">="``, or ``"<"``)."""

    row: str
    op: Literal["<=", ">=", "<"]
    limit: float

    def met(self, section: Section) -> bool | None:
        row = section.row(self.row)
        ratio = row.ratio if row is not None else None
        if ratio is None:
            return None
        if self.op == "<=":
            return ratio <= self.limit
        if self.op == "<":
            return ratio < self.limit
        return ratio >= self.limit

    def describe(self) -> str:
        return f"{self.row}: ratio {self.op} {self.limit:g}"


@dataclass(frozen=True)
class Column:
    """One figure of a section that reports several per row (``Row.metrics[key]``),
    shown under ``header``, formatted with ``fmt``."""

    key: str
    header: str
    fmt: str = "{:,.1f}"

    def format(self, row: Row) -> str:
        value = row.metrics.get(self.key)
        return "n/a" if value is None else self.fmt.format(value)


@dataclass
class Section:
    key: str
    title: str
    unit: str
    baseline: str
    rows: list[Row]
    higher_is_better: bool = False
    targets: list[Target] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None
    #: False for a ``--quick`` run: too few samples to say whether a target is met.
    judged: bool = True
    #: When set, the table shows these figures of each row instead of median and ratio.
    columns: list[Column] = field(default_factory=list)

    def row(self, name: str) -> Row | None:
        return next((r for r in self.rows if r.name == name), None)

    def compute_ratios(self) -> None:
        """Per-round ratio of every row to the baseline row of the same round."""
        base = self.row(self.baseline)
        for row in self.rows:
            row.ratios.clear()
            if base is None or not base.ok or not row.ok:
                continue
            row.ratios.extend(
                value / ref for value, ref in zip(row.samples, base.samples, strict=False) if ref
            )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "key": self.key,
            "title": self.title,
            "unit": self.unit,
            "baseline": self.baseline,
            "higher_is_better": self.higher_is_better,
            "skipped": self.skipped,
            "params": self.params,
            "notes": self.notes,
            "targets": [
                {"target": t.describe(), "met": t.met(self), "row": t.row, "limit": t.limit}
                for t in self.targets
            ],
            "rows": [r.to_json() for r in self.rows],
        }
        if self.columns:
            data["columns"] = [{"key": c.key, "header": c.header} for c in self.columns]
        return data


async def interleave(
    batches: Mapping[str, Batch], rows: Mapping[str, Row], rounds: int, *, warmup: bool = True
) -> None:
    """Run every row's batch once per round, alternating the order each round.

    A batch that raises marks its row as failed and drops it from later rounds;
    the other rows go on."""
    names = [name for name in batches if rows[name].status == "ok"]

    async def run(name: str, record: bool) -> None:
        row = rows[name]
        if row.status != "ok":
            return
        gc.collect()
        try:
            value = await batches[name]()
        except Exception as exc:
            row.fail(exc)
            return
        if record:
            row.samples.append(value)

    if warmup:
        for name in names:
            await run(name, record=False)
    for round_no in range(rounds):
        for name in names if round_no % 2 == 0 else names[::-1]:
            await run(name, record=True)
