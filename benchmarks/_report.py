"""Tables, JSON, the chart and the README block."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import re
import textwrap
from pathlib import Path
from typing import Any

from ._measure import Section

__all__ = ["machine", "markdown", "update_readme", "write_chart", "write_json"]

DISTRIBUTIONS = (
    "resilient-http",
    "httpx",
    "httpcore",
    "anyio",
    "tenacity",
    "uvicorn",
    "httpx-retries",
    "interlock-cb",
    "aiobreaker",
    "purgatory",
    "pybreaker",
    "matplotlib",
)
README_BEGIN = "<!-- benchmark-results:begin -->"
README_END = "<!-- benchmark-results:end -->"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _version(distribution: str) -> str | None:
    if distribution == "resilient-http":
        import resilient_http

        return resilient_http.__version__
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(terse=True),
        "load_average": _loadavg(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": {name: _version(name) for name in DISTRIBUTIONS},
    }


def _bytes(value: float) -> str:
    if value >= 1024 * 1024:
        return f"{value / (1024 * 1024):,.2f} MiB"
    if value >= 10 * 1024:
        return f"{value / 1024:,.1f} KiB"
    return f"{value:,.0f} B"


def _value(section: Section, value: float) -> str:
    if section.unit == "bytes":
        return _bytes(value)
    if section.unit == "requests/s":
        return f"{value:,.0f}"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.1f}"


def _ratio(ratio: float) -> str:
    return f"{ratio:.1f}x" if ratio >= 100 else f"{ratio:.3f}x"


_VERDICT = {True: "met", False: "MISSED", None: "n/a"}


def _notes_markdown(section: Section) -> list[str]:
    lines = [f"- {note}" for note in section.notes]
    lines.extend(f"- {row.name}: {row.note}" for row in section.rows if row.note)
    return [*lines, ""] if lines else []


def _columns_markdown(section: Section) -> str:
    """A section with several figures per row (``Section.columns``)."""
    headers = " | ".join(c.header for c in section.columns)
    lines = [
        f"### {section.title}",
        "",
        f"| configuration | {headers} |",
        "| --- |" + " ---: |" * len(section.columns),
    ]
    for row in section.rows:
        name = f"**{row.name}**" if row.role == "ours" else row.name
        if not row.ok:
            lines.append(f"| {name} | {row.status} |" + " |" * (len(section.columns) - 1))
            continue
        lines.append(f"| {name} | " + " | ".join(c.format(row) for c in section.columns) + " |")
    return "\n".join([*lines, "", *_notes_markdown(section)])


def section_markdown(section: Section) -> str:
    lines = [f"### {section.title}", ""]
    if section.skipped:
        return "\n".join([*lines, f"Skipped: {section.skipped}.", ""])
    if section.columns:
        return _columns_markdown(section)
    targets = {t.row: t for t in section.targets}
    value_header = "value" if section.unit == "bytes" else f"median {section.unit}"
    ratio_header = "ratio" if section.unit == "bytes" else "vs baseline (median per-round ratio)"
    lines.append(f"| contender | {value_header} | {ratio_header} | target |")
    lines.append("| --- | ---: | ---: | --- |")
    for row in section.rows:
        name = f"**{row.name}**" if row.role == "ours" else row.name
        if row.median is None:
            lines.append(f"| {name} | {row.status} | | |")
            continue
        value = _value(section, row.median)
        ratio = ""
        if row.ratio is not None and row.name != section.baseline:
            ratio = _ratio(row.ratio)
        elif row.name == section.baseline:
            ratio = "baseline"
        target = targets.get(row.name)
        verdict = ""
        if target is not None:
            met = target.met(section) if section.judged else None
            word = _VERDICT[met] if section.judged else "not judged (--quick)"
            verdict = f"{target.op} {target.limit:g}: {word}"
        lines.append(f"| {name} | {value} | {ratio} | {verdict} |")
    lines.append("")
    lines.extend(_notes_markdown(section))
    return "\n".join(lines)


def machine_markdown(info: dict[str, Any]) -> str:
    versions = ", ".join(
        f"{name} {version}" for name, version in info["versions"].items() if version is not None
    )
    missing = [name for name, version in info["versions"].items() if version is None]
    load = info.get("load_average")
    lines = [
        f"- Machine: {info['cpu']}, {info['cores']} cores, {info['os']}",
        f"- Python: {info['python']}",
        f"- Versions: {versions}",
    ]
    if missing:
        lines.append(f"- Not installed: {', '.join(missing)}")
    if load is not None:
        lines.append(f"- Load average at start: {', '.join(str(x) for x in load)}")
    lines.append(f"- Date: {info['date']}")
    return "\n".join(lines)


def markdown(info: dict[str, Any], sections: list[Section], command: str) -> str:
    parts = [
        machine_markdown(info),
        f"- Command: `{command}`",
        "",
        *(section_markdown(s) for s in sections),
    ]
    return "\n".join(parts)


def write_json(
    path: Path, info: dict[str, Any], settings: dict[str, Any], sections: list[Section]
) -> None:
    data = {
        "machine": info,
        "settings": settings,
        "sections": [s.to_json() for s in sections],
    }
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def update_readme(readme: Path, block: str, chart: str | None) -> None:
    """Replace the results block of ``readme`` (between the markers)."""
    text = readme.read_text(encoding="utf-8")
    if README_BEGIN not in text or README_END not in text:
        raise ValueError(f"{readme} has no {README_BEGIN} ... {README_END} block")
    body = block if chart is None else f"![benchmark chart]({chart})\n\n{block}"
    new = re.sub(
        re.escape(README_BEGIN) + r".*?" + re.escape(README_END),
        lambda _: f"{README_BEGIN}\n{body.strip()}\n{README_END}",
        text,
        flags=re.S,
    )
    readme.write_text(new, encoding="utf-8")


_SHORT = (
    (" ResilientTransport", ""),
    (" RetryTransport", ""),
    (" AsyncCircuitBreakerTransport", ""),
    (" (wrapping the call)", ""),
    (" (recipe)", ""),
    (" (default max_hosts)", ""),
    (" (no bound)", ""),
    ("held after ", ""),
    ("CircuitOpenError ", ""),
    (" response served", ""),
)


def _short(name: str) -> str:
    for long, short in _SHORT:
        name = name.replace(long, short)
    return name


def _title(text: str) -> str:
    return textwrap.fill(text, 60)


def write_chart(path: Path, info: dict[str, Any], sections: list[Section]) -> str | None:
    """Draw the results to ``path`` (PNG). Returns why not when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]'): no chart"

    by_key = {s.key: s for s in sections}
    fig, axes = plt.subplots(3, 2, figsize=(15, 15))
    colours = {"baseline": "#9e9e9e", "ours": "#1f77b4", "peer": "#ff7f0e", "reference": "#cfcfcf"}

    def ratio_panel(ax: Any, key: str, xlabel: str) -> None:
        section = by_key.get(key)
        if section is None or section.skipped:
            ax.set_axis_off()
            ax.set_title(f"{key}: not measured")
            return
        rows = [r for r in section.rows if r.ratio is not None]
        names = [_short(r.name) for r in rows]
        ratios = [r.ratio or 0.0 for r in rows]
        ax.barh(names, ratios, color=[colours.get(r.role, "#777") for r in rows])
        ax.invert_yaxis()
        for target in section.targets:
            ax.axvline(target.limit, color="#2ca02c", linestyle="--", linewidth=1)
        ax.axvline(1.0, color="black", linewidth=0.8)
        for y, ratio in enumerate(ratios):
            ax.text(ratio, y, f" {ratio:.3f}x", va="center", fontsize=8)
        ax.set_title(_title(section.title), fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_xlim(0, max([*ratios, 1.1]) * 1.18)

    slower = "time per request vs bare httpx (lower is better)"
    ratio_panel(axes[0][0], "success_in_process", slower)
    ratio_panel(axes[0][1], "success_real_server", slower)
    ratio_panel(axes[1][1], "concurrency", "throughput vs bare httpx (higher is better)")

    ax = axes[1][0]
    rejection = by_key.get("rejection")
    if rejection is not None:
        rows = [r for r in rejection.rows if r.median is not None]
        values = [r.median or 0.0 for r in rows]
        ax.barh(
            [_short(r.name) for r in rows],
            values,
            color=["#d62728" if "hanging" in r.name else colours.get(r.role, "#777") for r in rows],
        )
        ax.invert_yaxis()
        ax.set_xscale("log")
        for y, value in enumerate(values):
            ax.text(value, y, f" {value:,.1f} µs", va="center", fontsize=8)
        ax.set_title(_title(rejection.title), fontsize=10)
        ax.set_xlabel("µs per call (log scale)")
        ax.set_xlim(min(values) / 2, max(values) * 20)
    else:
        ax.set_axis_off()

    ax = axes[2][0]
    mem = by_key.get("memory")
    if mem is not None:
        rows = [r for r in mem.rows if r.median is not None and "held after" in r.name]
        values = [(r.median or 0.0) / (1024 * 1024) for r in rows]
        ax.barh(
            [_short(r.name) for r in rows],
            values,
            color=[colours.get(r.role, "#777") for r in rows],
        )
        ax.invert_yaxis()
        for y, value in enumerate(values):
            ax.text(value, y, f" {value:,.2f} MiB", va="center", fontsize=8)
        ax.set_title(_title(mem.title), fontsize=10)
        ax.set_xlabel("MiB held (tracemalloc)")
        ax.set_xlim(0, max([*values, 0.1]) * 1.3)
    else:
        ax.set_axis_off()

    ax = axes[2][1]
    ax.set_axis_off()
    versions = "\n".join(
        f"  {name} {version}" for name, version in info["versions"].items() if version
    )
    ax.text(
        0.0,
        1.0,
        f"{info['cpu']}\n{info['cores']} cores, {info['python']}\n{info['os']}\n"
        f"{info['date']}\n\n{versions}",
        va="top",
        family="monospace",
        fontsize=9,
    )
    fig.suptitle("resilient_http benchmarks: ratios against bare httpx, same run", fontsize=13)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None
