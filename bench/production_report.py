"""Markdown for the ``production`` scenario: every cell, then the issue-17 figures (medians over
the rounds) against their targets, the spend-row count and the Redis round trips."""

from __future__ import annotations

import statistics

from common import fmt
from production import ProdCell, ProductionResult, ServerRun
from redis_trips import trip_lines

CPU_TARGET_MS = 0.6
RPS_RATIO_TARGET = 0.7
SSE_RATIO_TARGET = 1.3
SPEND_LOG_TARGET_MS = 0.05


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _cells(run: ServerRun, who: str, mode: str) -> list[ProdCell]:
    return [c for c in run.cells if c.who == who and c.mode == mode]


def _ratio_per_round(run: ServerRun, mode: str) -> list[float | None]:
    """production rps ÷ master rps, round by round (the two ran back to back)."""
    out: list[float | None] = []
    for p in _cells(run, "production", mode):
        m = next((c for c in _cells(run, "master", mode) if c.round == p.round), None)
        out.append(p.rps / m.rps if m and m.rps else None)
    return out


def _met(value: float | None, target: float, at_most: bool) -> str:
    if value is None:
        return "—"
    ok = value <= target if at_most else value >= target
    return "yes" if ok else "**no**"


def cell_table(result: ProductionResult) -> list[str]:
    out = [
        "| server | round | key | mode | rps | p50 ms | p99 ms | gateway CPU ms/req | PG backends CPU ms/req "
        "| Redis server CPU ms/req | errors |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in result.runs:
        if run.error and not run.cells:
            out.append(f"| {run.name} | — | — | — | failed | | | | | | |")
        for c in run.cells:
            out.append(
                f"| {c.server} | {c.round} | {c.who} | {c.mode} | {c.rps:.0f} | {fmt(c.p50_ms)} | "
                f"{fmt(c.p99_ms)} | {fmt(c.cpu_ms_per_req, 3)} | {fmt(c.pg_cpu_ms_per_req, 3)} | "
                f"{fmt(c.redis_cpu_ms_per_req, 3)} | {c.errors} |"
            )
    return out


def spend_verdict(run: ServerRun) -> str:
    sent = sum(run.sent.values())
    if run.rows is None:
        return "not counted"
    extra = run.rows - sent
    if extra == 0:
        verdict = "equal"
    elif 0 < extra <= run.unseen_max:
        verdict = (
            f"{extra} more rows, within the {run.unseen_max} requests that can be in flight when the wrk "
            "runs stop (answered and logged, not counted by wrk)"
        )
    else:
        verdict = f"**MISMATCH by {extra}**"
    prod = run.sent["production"]
    return (
        f"{run.rows} spend rows for {sent} requests answered to the bench (probes + warm-ups + measured "
        f"runs): {verdict}; production key: {run.rows_production} rows for {prod} answered"
    )


def figures(result: ProductionResult) -> list[str]:
    run = next((r for r in result.runs if r.name == "production"), None)
    if run is None or not run.cells:
        return ["", "(the production server failed; see its error below)"]
    cpu = {
        (w, m): _median([c.cpu_ms_per_req for c in _cells(run, w, m)])
        for w in ("master", "production")
        for m in ("json", "sse-usage")
    }
    rps = {
        (w, m): _median([c.rps for c in _cells(run, w, m)])
        for w in ("master", "production")
        for m in ("json", "sse-usage")
    }
    ratio = _median(_ratio_per_round(run, "json"))
    ratio_sse = _median(_ratio_per_round(run, "sse-usage"))
    pj, ps = cpu[("production", "json")], cpu[("production", "sse-usage")]
    sse_ratio = ps / pj if pj and ps else None
    rounds = max((c.round for c in run.cells), default=0)
    out = [
        "",
        f"Medians over {rounds} round(s); ratios are taken round by round (the two keys ran back to back).",
        "",
        "| figure | value | target | met |",
        "|---|---:|---:|---|",
        f"| production key, JSON c=16: gateway CPU ms/req | {fmt(pj, 3)} | ≤ {CPU_TARGET_MS} | "
        f"{_met(pj, CPU_TARGET_MS, True)} |",
        f"| production key, JSON c=16: rps ÷ master-key rps | {fmt(ratio, 3)} | ≥ {RPS_RATIO_TARGET} | "
        f"{_met(ratio, RPS_RATIO_TARGET, False)} |",
        f"| production key, SSE include_usage ÷ JSON: CPU per request | {fmt(sse_ratio, 3)} | "
        f"≤ {SSE_RATIO_TARGET} | {_met(sse_ratio, SSE_RATIO_TARGET, True)} |",
        f"| production key, SSE c=16: rps ÷ master-key rps | {fmt(ratio_sse, 3)} | — | — |",
        f"| master key, JSON / SSE: gateway CPU ms/req | {fmt(cpu[('master', 'json')], 3)} / "
        f"{fmt(cpu[('master', 'sse-usage')], 3)} | — | — |",
        f"| production key, SSE: gateway CPU ms/req | {fmt(ps, 3)} | — | — |",
        f"| rps JSON master / production | {fmt(rps[('master', 'json')], 0)} / "
        f"{fmt(rps[('production', 'json')], 0)} | — | — |",
        f"| rps SSE master / production | {fmt(rps[('master', 'sse-usage')], 0)} / "
        f"{fmt(rps[('production', 'sse-usage')], 0)} | — | — |",
    ]
    nolog = next((r for r in result.runs if r.name == "production-nolog" and r.cells), None)
    if nolog is not None:
        off = _median([c.cpu_ms_per_req for c in _cells(nolog, "production", "json")])
        cost = pj - off if pj is not None and off is not None else None
        out.append(
            f"| spend log cost (production JSON CPU − the same with `disable_spend_logs`) | {fmt(cost, 3)} | "
            f"≤ {SPEND_LOG_TARGET_MS} | {_met(cost, SPEND_LOG_TARGET_MS, True)} |"
        )
    exact = next((r for r in result.runs if r.name == "production-exact" and r.cells), None)
    if exact is not None:
        ratios = _ratio_per_round(exact, "json")
        out.append(
            f"| without quota leases (`counter_leases: false`): production JSON rps ÷ master, CPU ms/req "
            f"| {fmt(_median(ratios), 3)}, "
            f"{fmt(_median([c.cpu_ms_per_req for c in _cells(exact, 'production', 'json')]), 3)} | — | — |"
        )
    out += ["", f"- spend rows: {spend_verdict(run)}"]
    if run.stop_s is not None:
        out.append(f"- SIGTERM → exit (final spend flush included): {run.stop_s:.2f} s")
    return out


def render_production(result: ProductionResult) -> list[str]:
    out = ["", "## Production shape (issue 17): 2 workers, PostgreSQL spend log, Redis counters", ""]
    out += cell_table(result)
    out += figures(result)
    if result.trips is not None:
        out += trip_lines(result.trips)
    for run in result.runs:
        if run.error:
            out += ["", f"**{run.name} failed:**", "", "```", run.error, "```"]
    out += [f"- {n}" for n in result.notes]
    out += [
        "",
        "Gateway CPU = utime+stime of the tollgate process tree (supervisor + 2 workers) during the wrk run "
        "plus the flush of its spend rows, ÷ requests wrk completed. PG backends = the PostgreSQL processes "
        "serving this database; Redis server = the whole redis-server (other users of it add noise).",
    ]
    return out
