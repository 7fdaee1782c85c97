"""The targets of the scale work beside the figures the benchmarks measured (`make bench`
prints this table last).

Each target reads the raw figures its benchmark wrote with `--json` (or, for a script
that wrote none, the line it printed). A benchmark that did not run, failed, or measured
at another size than the target names gives "not measured", or the figure it did measure
with the verdict "n/a": a figure is judged only where the target says it is taken.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from common import median, table

MIB_IN_MB = 1.048576


@dataclass(frozen=True)
class Outcome:
    """What one benchmark left: its `--json` figures (None without) and its stdout lines."""

    figures: Any = None
    lines: Sequence[str] = field(default_factory=tuple)


Outcomes = Mapping[str, Outcome]


@dataclass(frozen=True)
class Figure:
    measured: str
    verdict: str
    source: str


@dataclass(frozen=True)
class Target:
    text: str
    read: Callable[[Outcomes], Figure | None]
    """The figure from the outcomes; None when the benchmark that measures it did not run."""


def judged(passes: bool) -> str:
    return "meets" if passes else "MISSES"


def _rows(outcomes: Outcomes, name: str) -> list[dict] | None:
    found = outcomes.get(name)
    if found is None or not isinstance(found.figures, list):
        return None
    return [row for row in found.figures if isinstance(row, dict)]


def _dag_seconds(row: dict, key: str) -> float:
    return median(row.get(key) or [])


def _floor_seconds(row: dict) -> float:
    """The sandboxed `make -j2` (plain make for figures kept from before it was measured)."""
    return _dag_seconds(row, "make_sandboxed" if row.get("make_sandboxed") else "make")


def _dag_row(rows: list[dict], stages: int) -> dict | None:
    return next((row for row in rows if row.get("stages") == stages and row.get("cyclone")),
                None)


def dag_200_vs_make(outcomes: Outcomes) -> Figure | None:
    rows = _rows(outcomes, "dag_overhead")
    if rows is None:
        return None
    row = _dag_row(rows, 200)
    if row is None:
        return Figure("not measured (no 200-stage DAG)", "n/a", "dag_overhead")
    cyclone, make = _dag_seconds(row, "cyclone"), _floor_seconds(row)
    times = cyclone / make
    floor = "sandboxed make -j2" if row.get("make_sandboxed") else "make -j2"
    return Figure(f"{times:.1f}x {floor} ({cyclone:.2f} s / {make:.2f} s)", judged(times <= 5),
                  "dag_overhead (clock stops at the engine's cache, not at the CLI)")


def dag_1000_vs_prefect(outcomes: Outcomes) -> Figure | None:
    rows = _rows(outcomes, "dag_overhead")
    if rows is None:
        return None
    row = _dag_row(rows, 1000)
    if row is None or not row.get("prefect"):
        what = "no 1,000-stage DAG" if row is None else "Prefect did not run"
        return Figure(f"not measured ({what})", "n/a", "dag_overhead")
    cyclone, prefect = _dag_seconds(row, "cyclone"), _dag_seconds(row, "prefect")
    times = cyclone / prefect
    return Figure(f"{times:.2f}x Prefect ({cyclone:.1f} s / {prefect:.1f} s)",
                  judged(times <= 0.5), "dag_overhead")


def _overhead_ms_per_stage(row: dict) -> float:
    return (_dag_seconds(row, "cyclone") - _floor_seconds(row)) / row["stages"] * 1000


def dag_per_stage_growth(outcomes: Outcomes) -> Figure | None:
    rows = _rows(outcomes, "dag_overhead")
    if rows is None:
        return None
    small = _dag_row(rows, 50)
    measured = sorted((row for row in rows if row.get("cyclone")), key=lambda r: r["stages"])
    if small is None or not measured or measured[-1]["stages"] <= 50:
        return Figure("not measured (needs 50 stages and a larger DAG)", "n/a", "dag_overhead")
    large = _dag_row(rows, 5000) or measured[-1]
    growth = _overhead_ms_per_stage(large) / _overhead_ms_per_stage(small)
    text = (f"{growth:.1f}x ({_overhead_ms_per_stage(large):.1f} ms/stage at "
            f"{large['stages']:,}, {_overhead_ms_per_stage(small):.1f} at 50)")
    verdict = judged(growth <= 1.5) if large["stages"] == 5000 else "n/a (not at 5,000)"
    return Figure(text, verdict, "dag_overhead")


def _scale_run(outcomes: Outcomes) -> dict | None:
    found = outcomes.get("scale")
    if found is None or not isinstance(found.figures, dict):
        return None
    return found.figures.get("run")


def _at_10000(run: dict) -> str | None:
    return None if run["stages"] == 10000 else f"n/a (at {run['stages']:,} stages)"


def large_run_completes(outcomes: Outcomes) -> Figure | None:
    run = _scale_run(outcomes)
    if run is None:
        return None
    return Figure(f"{run['stages']:,} stages Succeeded in {run['seconds']:.0f} s "
                  f"({run['seconds'] / run['stages'] * 1000:.1f} ms/stage)",
                  _at_10000(run) or "meets", "scale (fake runtime)")


def large_run_size(outcomes: Outcomes) -> Figure | None:
    run = _scale_run(outcomes)
    if run is None:
        return None
    return Figure(f"{run['bytes'] / 1024:,.0f} KiB at {run['stages']:,} stages "
                  f"({run['bytes_per_stage']:.0f} B/stage)",
                  _at_10000(run) or judged(run["bytes"] <= 1024 * 1024), "scale")


def large_run_rss(outcomes: Outcomes) -> Figure | None:
    run = _scale_run(outcomes)
    if run is None:
        return None
    megabytes = run["rss_peak"] * MIB_IN_MB
    return Figure(f"{megabytes:,.0f} MB at {run['stages']:,} stages",
                  _at_10000(run) or judged(megabytes <= 300),
                  "scale (engine, node agent and store in one process, as `cyclone up`)")


def _bursts(outcomes: Outcomes, cluster: str) -> list[dict]:
    rows = _rows(outcomes, "throughput") or []
    return [row for row in rows if row.get("cluster") == cluster
            and row.get("kind") == "burst" and "replicas" not in row]


def kube_runs_per_minute(outcomes: Outcomes) -> Figure | None:
    if _rows(outcomes, "throughput") is None:
        return None
    bursts = _bursts(outcomes, "kube-apiserver")
    if not bursts:
        return Figure("not measured (no kube-apiserver series)", "n/a", "throughput")
    best = max(bursts, key=lambda row: row["runs"])
    verdict = judged(best["per_min"] >= 1500) if best["runs"] >= 2000 else \
        f"n/a (over {best['runs']:,} runs, not 2,000)"
    return Figure(f"{best['per_min']:,.0f} runs/min over {best['runs']:,} runs", verdict,
                  "throughput (default client limits)")


def _paced_rate(row: dict) -> float:
    found = re.search(r"paced ([0-9.]+)/s", str(row.get("kind", "")))
    return float(found.group(1)) if found else float("nan")


def kube_pod_latency(outcomes: Outcomes) -> Figure | None:
    rows = _rows(outcomes, "throughput")
    if rows is None:
        return None
    paced = [row for row in rows if row.get("cluster") == "kube-apiserver"
             and str(row.get("kind", "")).startswith("paced")]
    if not paced:
        return Figure("not measured (no paced kube-apiserver series)", "n/a", "throughput")
    row = max(paced, key=_paced_rate)
    rate = _paced_rate(row)
    p99 = row["pod_p99"] * 1000
    verdict = judged(p99 <= 50) if rate >= 10 else f"n/a (at {rate:g} runs/s, not 10)"
    return Figure(f"p99 {p99:,.1f} ms at {rate:g} runs/s ({row['kind']})", verdict,
                  "throughput")


def writes_per_stage(outcomes: Outcomes) -> Figure | None:
    if _rows(outcomes, "throughput") is None:
        return None
    found = []
    for cluster in ("kube-apiserver", "embedded"):
        bursts = _bursts(outcomes, cluster)
        if bursts:
            found.append((cluster, max(bursts, key=lambda row: row["runs"])["engine_writes"]))
    if not found:
        return Figure("not measured (no burst series)", "n/a", "throughput")
    text = ", ".join(f"{cluster} {writes:.2f}" for cluster, writes in found)
    return Figure(f"engine writes/stage: {text}", judged(found[0][1] <= 3),
                  f"throughput (judged on {found[0][0]})")


def engine_replicas(outcomes: Outcomes) -> Figure | None:
    rows = _rows(outcomes, "throughput")
    if rows is None:
        return None
    replicas = [row for row in rows if "replicas" in row]
    if not replicas:
        return Figure("not measured (no --replicas series)", "n/a", "throughput")
    parts, passes = [], True
    for cluster in dict.fromkeys(row["cluster"] for row in replicas):
        ones = [r["per_min"] for r in replicas if r["cluster"] == cluster and r["replicas"] == 1]
        for row in (r for r in replicas if r["cluster"] == cluster and r["replicas"] > 1):
            times = row["per_min"] / median(ones) if ones else float("nan")
            passes &= row["lost"] == 0 and row["duplicated"] == 0 and times >= 1
            parts.append(f"{cluster} {row['replicas']} replicas: {times:.2f}x of 1, "
                         f"{row['lost']} lost, {row['duplicated']} duplicated")
    if not parts:
        return Figure("not measured (no run with more than one replica)", "n/a", "throughput")
    return Figure("; ".join(parts), judged(passes), "throughput --replicas")


FIRST_PAGE_LINE = re.compile(r"first page of runs, ([\d,]+) stored: ([\d.,]+) ms")


def first_page_of_runs(outcomes: Outcomes) -> Figure | None:
    found = outcomes.get("run_listing")
    stored = milliseconds = None
    if found is not None and isinstance(found.figures, dict):
        stored, milliseconds = found.figures.get("stored"), found.figures.get("first_page_ms")
    if found is not None and milliseconds is None:
        match = next(filter(None, map(FIRST_PAGE_LINE.search, found.lines)), None)
        if match:
            stored = int(match.group(1).replace(",", ""))
            milliseconds = float(match.group(2).replace(",", ""))
    source = "run_listing (REST API in process, paged at the cluster)"
    if milliseconds is None:
        scale = outcomes.get("scale")
        listed = scale.figures.get("list") if scale and isinstance(scale.figures, dict) else None
        if not listed:
            return None
        stored, milliseconds = listed["stored"], listed["page_seconds"] * 1000
        source = "scale (REST API in process, a page of 20 cut from the whole list)"
    verdict = judged(milliseconds <= 30) if stored == 10000 else f"n/a ({stored:,} stored)"
    return Figure(f"{milliseconds:,.1f} ms with {stored:,} stored", verdict, source)


def cli_start(outcomes: Outcomes) -> Figure | None:
    rows = _rows(outcomes, "cli_startup")
    if rows is None:
        return None
    measured = {row["command"]: row for row in rows}
    if not measured:
        return Figure("not measured", "n/a", "cli_startup")
    text = "; ".join(f"{name} {row['median_ms']:.0f} ms (CPU {row['cpu_median_ms']:.0f} ms, "
                     f"python -c pass {row['python_ms']:.0f} ms)"
                     for name, row in measured.items())
    passes = all(row["median_ms"] <= 150 for row in measured.values())
    return Figure(text, judged(passes), "cli_startup (median wall time)")


TARGETS: tuple[Target, ...] = (
    Target("200-stage DAG through `cyclone run --watch`: ≤ 5x sandboxed make -j2",
           dag_200_vs_make),
    Target("1,000-stage DAG: ≤ 0.5x Prefect 3's time", dag_1000_vs_prefect),
    Target("ms/stage at 5,000 stages ≤ 1.5x ms/stage at 50", dag_per_stage_growth),
    Target("10,000-stage run (fake runtime) completes", large_run_completes),
    Target("stored WorkflowRun of 10,000 stages ≤ 1 MiB", large_run_size),
    Target("peak RSS of cyclone up ≤ 300 MB (10,000 stages)", large_run_rss),
    Target("real kube-apiserver: ≥ 1,500 one-stage runs/min over 2,000 runs",
           kube_runs_per_minute),
    Target("real kube-apiserver: creation → pod p99 ≤ 50 ms at 10 runs/s", kube_pod_latency),
    Target("≤ 3 engine writes per stage", writes_per_stage),
    Target("2 engine replicas: nothing lost or duplicated, runs/min not below 1 replica's",
           engine_replicas),
    Target("first page of runs with 10,000 stored: ≤ 30 ms through the API",
           first_page_of_runs),
    Target("cyclone --help and run --help: ≤ 150 ms", cli_start),
)


def figure_of(target: Target, outcomes: Outcomes) -> Figure:
    try:
        found = target.read(outcomes)
    except (KeyError, TypeError, ValueError, ZeroDivisionError, AttributeError) as err:
        return Figure(f"not measured (figures unreadable: {type(err).__name__} {err})", "n/a",
                      "")
    return found or Figure("not measured", "n/a", "its benchmark did not run")


def targets_table(outcomes: Outcomes) -> str:
    rows = []
    for target in TARGETS:
        figure = figure_of(target, outcomes)
        rows.append((target.text, figure.measured, figure.verdict, figure.source))
    return table(("target", "measured", "verdict", "from"), rows)
