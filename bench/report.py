"""The Markdown report: the per-cell table, the per-server summary and the tollgate ÷ LiteLLM ratios."""

from __future__ import annotations

from collections.abc import Sequence

from common import fmt
from measure import Cell, ServerResult, Settings


def cell_of(results: list[ServerResult], name: str, mode: str, conc: int) -> Cell | None:
    for r in results:
        if r.name == name:
            return next((c for c in r.cells if c.mode == mode and c.conc == conc), None)
    return None


def render(results: list[ServerResult], s: Settings, meta: dict[str, str], extra: Sequence[str] = ()) -> str:
    lines = ["# tollgate vs LiteLLM proxy — `make bench`", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items()]
    if not results:  # e.g. only the production scenario ran: it renders its own tables
        return "\n".join([*lines, *extra, ""])
    lines += [
        "",
        "| server | mode | conc | rps | p50 ms | p99 ms | CPU ms/req | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.error and not r.cells:
            lines.append(f"| {r.name} | — | — | failed | | | | |")
            continue
        for c in r.cells:
            lines.append(
                f"| {c.server} | {c.mode} | {c.conc} | {c.rps:.0f} | {fmt(c.p50_ms)} | {fmt(c.p99_ms)} | "
                f"{fmt(c.cpu_ms_per_req, 3)} | {c.errors} |"
            )
    lines += [
        "",
        "## Summary",
        "",
        "| server | cold start s (first 200 / all idle) | idle RSS MB (total / per worker) | "
        "processes | best rps json / sse | added p50 c=1 json ms | stream TTFB p50 ms | added TTFB ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    upstream = next((r for r in results if r.kind == "upstream"), None)
    up_cell = cell_of(results, upstream.name, "json", 1) if upstream else None
    up_ttfb = upstream.ttfb.get("ttfb_p50_ms") if upstream else None
    for r in results:
        if r.error and not r.cells:
            continue
        c1 = cell_of(results, r.name, "json", 1)
        gateway = r.kind != "upstream"
        added = None
        if gateway and c1 and up_cell and c1.p50_ms is not None and up_cell.p50_ms is not None:
            added = c1.p50_ms - up_cell.p50_ms
        ttfb = r.ttfb.get("ttfb_p50_ms")
        added_ttfb = ttfb - up_ttfb if gateway and ttfb is not None and up_ttfb is not None else None
        rss = f"{fmt(r.rss_idle_mb, 0)} / {fmt(r.rss_idle_mb / r.workers if r.rss_idle_mb else None, 0)}"
        best = " / ".join(
            fmt(max((c.rps for c in r.cells if c.mode == mode), default=None), 0) for mode in ("json", "sse")
        )
        lines.append(
            f"| {r.name} | {fmt(r.cold_start_s)} / {fmt(r.settled_s)} | {rss} | {r.processes} | {best} | "
            f"{fmt(added)} | {fmt(ttfb)} | {fmt(added_ttfb)} |"
        )
    lines += [*ratio_lines(results, s), *extra]
    failed = [r for r in results if r.error]
    if failed:
        lines += ["", "## Failures", ""]
        for r in failed:
            lines += [f"- **{r.name}**:", "", "```", r.error or "", "```"]
    lines += [
        "",
        "Notes: CPU ms/req = utime+stime of the server's whole process tree (from /proc) during the "
        "wrk run ÷ completed requests; for the gateways it excludes the upstream. wrk, the upstream and the "
        "server share the same cores, so absolute rps is box-bound; compare rows, not machines. Idle RSS is "
        "measured after warm-up and includes any supervisor process. TTFB: sequential streaming requests on "
        "fresh connections until the first `data:` byte.",
        "",
    ]
    return "\n".join(lines)


def ratio_lines(results: list[ServerResult], s: Settings) -> list[str]:
    out = [
        "",
        "## tollgate ÷ LiteLLM",
        "",
        "| workers | mode | conc | rps tollgate ÷ LiteLLM (higher = faster) "
        "| CPU/req LiteLLM ÷ tollgate (higher = cheaper) |",
        "|---:|---|---:|---:|---:|",
    ]
    rows = 0
    for r in results:
        if r.kind != "tollgate":
            continue
        other = next((x for x in results if x.kind == "litellm" and x.workers == r.workers), None)
        if other is None:
            continue
        for mode in s.modes:
            for conc in s.concurrency:
                a = cell_of(results, r.name, mode, conc)
                b = cell_of(results, other.name, mode, conc)
                if not a or not b:
                    continue
                rps = f"{a.rps / b.rps:.1f}×" if b.rps else "—"
                cpu = (
                    f"{b.cpu_ms_per_req / a.cpu_ms_per_req:.1f}×"
                    if a.cpu_ms_per_req and b.cpu_ms_per_req
                    else "—"
                )
                out.append(f"| {r.workers} | {mode} | {conc} | {rps} | {cpu} |")
                rows += 1
    return out if rows else [*out[:3], "(no tollgate/LiteLLM pair measured)"]


def scenario_lines(
    results: list[ServerResult], refs: dict[str, tuple[str | None, float | None]], notes: list[str]
) -> list[str]:
    """Each scenario row's throughput beside plain tollgate and beside the row its claim is about."""
    out = [
        "",
        "## Scenarios (tollgate 1w)",
        "",
        "| scenario | mode | conc | rps | CPU ms/req | rps ÷ plain | compared with | rps ratio "
        "| target | met |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in results:
        name = r.name.removeprefix("tollgate ")
        reference, target = refs.get(name, (None, None))
        if r.error and not r.cells:
            out.append(f"| {name} | — | — | failed | | | | | | |")
            continue
        for c in r.cells:
            plain = cell_of(results, "tollgate plain", c.mode, c.conc)
            ref = cell_of(results, f"tollgate {reference}", c.mode, c.conc) if reference else None
            vs_plain = f"{c.rps / plain.rps:.3f}" if plain and plain.rps and name != "plain" else "—"
            ratio = c.rps / ref.rps if ref and ref.rps else None
            met = "—" if ratio is None or target is None else ("yes" if ratio >= target else "**no**")
            out.append(
                f"| {name} | {c.mode} | {c.conc} | {c.rps:.0f} | {fmt(c.cpu_ms_per_req, 3)} | {vs_plain} | "
                f"{reference or '—'} | {fmt(ratio, 3)} | {'≥ ' + fmt(target) if target else '—'} | {met} |"
            )
    out += ["", *[f"- {n}" for n in notes]] if notes else []
    return out
