"""The table (and --json document) the benchmark prints, and the machine it ran on."""
from __future__ import annotations

import os
import platform
import sys
from typing import Any

from .common import median, spread


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_mb = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_mb = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
            "memory_mb": mem_mb, "python": platform.python_version(), "implementation": sys.implementation.name,
            "os": f"{platform.system()} {platform.release()}", "loadavg": list(os.getloadavg())}


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.0f} ms"


def _ratio(value: float) -> str:
    return f"{value:.2f}×"


def _met(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "NO")


def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per figure: figure | ours | baseline | ratio | target | met?"""
    out: list[dict[str, Any]] = []

    def row(figure: str, ours: str, baseline: str, ratio: str, target: str, met: bool | None,
            **data: Any) -> None:
        out.append({"figure": figure, "ours": ours, "baseline": baseline, "ratio": ratio,
                    "target": target, "met": met, **data})

    cold = results.get("cold")
    if cold:
        wall = {k: [r["wall_s"] for r in v] for k, v in cold.items()}
        base = median(wall["baseline_import"])
        for kind, label in (("noop_ok_alarm", "cold start → no-op: OK-state alarm (HTTP)"),
                            ("noop_below_threshold", "cold start → no-op: below-threshold MNS msg")):
            ours = median(wall[kind])
            row(label, _ms(ours), f"{_ms(base)} (import ENS client)", _ratio(ours / base), "≤ 0.20×",
                ours / base <= 0.20, ours_s=ours, baseline_s=base, ratio_value=ours / base,
                ours_range_s=spread(wall[kind]), baseline_range_s=spread(wall["baseline_import"]))
        idle, noop = median(wall["followup_idle"]), median(wall["noop_ok_alarm"])
        row("cold start → readiness timer, no order open", _ms(idle), f"{_ms(noop)} (no-op OK alarm)",
            _ratio(idle / noop), "≤ 1.10× (no SDK, one state read)", idle / noop <= 1.10, ours_s=idle,
            baseline_s=noop, ratio_value=idle / noop, ours_range_s=spread(wall["followup_idle"]))
        ours, naive = median(wall["scale_out"]), median(wall["naive_scale_out"])
        row("cold start → scale-out (1 listing + 1 order + 1 publish)", _ms(ours), f"{_ms(naive)} (naive handler)",
            _ratio(ours / naive), "≤ 0.80×", ours / naive <= 0.80, ours_s=ours, baseline_s=naive,
            ratio_value=ours / naive, ours_range_s=spread(wall["scale_out"]),
            baseline_range_s=spread(wall["naive_scale_out"]))
    warm = results.get("warm")
    if warm:
        ledger = f"ledger {'≤ ' + str(warm['ledger_cap']) if warm['ledger_cap'] else 'growing'}"
        ratio = warm["ours_ms"] / warm["naive_fresh_ms"]
        row(f"warm scale-out, per event, SQLite (median of {warm['events']}, {ledger})", f"{warm['ours_ms']:.2f} ms",
            f"{warm['naive_fresh_ms']:.2f} ms (naive, clients per event)", _ratio(ratio), "≤ 1.10×", ratio <= 1.10,
            ratio_value=ratio, **warm)
        ratio = warm["ours_ms"] / warm["naive_ms"]
        row("warm scale-out, the same", f"{warm['ours_ms']:.2f} ms", f"{warm['naive_ms']:.2f} ms (naive, clients kept)",
            _ratio(ratio), "≤ 1.5×", ratio <= 1.5, ratio_value=ratio)
        empty = warm["ledger_ms"]["0"]
        for size, ms in warm["ledger_ms"].items():
            if size != "0":
                row(f"warm scale-out, {int(size):,} ledger entries in 24 h (median of {warm['ledger_events']})",
                    f"{ms:.2f} ms", f"{empty:.2f} ms (empty ledger)", _ratio(ms / empty), "≤ 1.10×",
                    ms / empty <= 1.10, ratio_value=ms / empty)
    planner = results.get("planner")
    if planner:
        row(f"planner alone, p50 per event ({planner['calls']:,} calls)", f"{planner['p50_us']:.0f} µs",
            "—", "—", "—", None, **planner)
        row("planner alone, p99 per event", f"{planner['p99_us']:.0f} µs", "—", "—", "—", None)
    policy = results.get("policy")
    if policy:
        row(f"policy load, {policy['regions']:,} regions (compiled at deploy)", f"{policy['load_ms']:.1f} ms",
            f"{policy['yaml_ms']:.1f} ms (the YAML parsed)", _ratio(policy["load_ms"] / policy["yaml_ms"]), "≤ 50 ms",
            policy["load_ms"] <= 50, **policy)
        row(f"plan, one signal per region, {policy['regions']:,} regions", f"{policy['plan_ms']:.1f} ms", "—", "—",
            "≤ 20 ms", policy["plan_ms"] <= 20)
    batch = results.get("batch")
    if batch:
        n = f"{batch['messages']:,}"
        row(f"batch {n} msgs / {batch['regions']} regions: RescaleDeviceService calls",
            str(batch["rescale_calls"]), f"{n} (naive: one per message)", "—", "= 1",
            batch["rescale_calls"] == 1, **batch)
        row("batch: messages published (MNS messages: its parts)", f"{batch['publishes']} ({batch['parts']})",
            f"{n} (naive)", "—", "= 1", batch["publishes"] == 1)
        row("batch: decode + plan (median)", f"{batch['decode_plan_ms']:.1f} ms",
            f"{batch['naive_ms'] / 1e3:,.1f} s (naive: {n} calls, extrapolated)",
            f"{batch['decode_plan_ms'] / batch['naive_ms']:.4f}×", "≤ 30 ms", batch["decode_plan_ms"] <= 30)
        row("batch: size of its largest part", f"{batch['message_kb']:.0f} KB", "—", "—",
            f"≤ {batch['mns_max_message_kb']} KB (MNS max)", batch["message_kb"] <= batch["mns_max_message_kb"])
        row("batch: whole handler, warm (1 order + 1 publish)", f"{batch['handler_ms']:.0f} ms", "—", "—", "—",
            None)
    book = results.get("book")
    if book:
        _book_rows(book, row)
    memory = results.get("memory")
    if memory:
        row("peak RSS, cold scale-out", f"{memory['scale_out_mb']:.1f} MB",
            f"{memory['naive_scale_out_mb']:.1f} MB (naive handler)",
            _ratio(memory["scale_out_mb"] / memory["naive_scale_out_mb"]),
            f"≤ {memory['target_mb']} MB of {memory['instance_mb']}",
            memory["scale_out_mb"] <= memory["target_mb"], **memory)
        row("peak RSS, cold no-op (OK alarm)", f"{memory['noop_mb']:.1f} MB",
            f"{memory['baseline_import_mb']:.1f} MB (import ENS client)", "—", "—", None)
    return out


def _book_rows(book: dict[str, Any], row: Any) -> None:
    """The order book and the shared store at scale (bench/book.py): each a ratio of two variants."""
    ms, n = book["ms"], f"median of {book['events']}"

    def versus(figure: str, key: str, ours: str, base: str, label: str, limit: float, target: str) -> None:
        a, b = ms[key][ours], ms[key][base]
        row(figure, f"{a:.2f} ms", f"{b:.2f} ms ({label})", _ratio(a / b), target, a / b <= limit, ratio_value=a / b)

    versus(f"warm scale-out, SQLite, {book['open']:,} open orders ({n})", "sqlite_book_s", "open", "empty",
           "empty book", 2.0, "≤ 2×")
    versus(f"warm scale-out, SQLite, {book['closed']:,} closed orders in 24 h", "sqlite_book_s", "closed", "empty",
           "empty book", 1.5, "≤ 1.5× (flat)")
    versus(f"warm scale-out, memory store, {book['closed']:,} closed orders", "memory_book_s", "closed", "empty",
           "empty book", 1.5, "≤ 1.5× (flat)")
    versus(f"warm scale-out, memory store, {book['ledger']:,} ledger entries in 24 h", "memory_ledger_s", "full",
           "empty", "empty ledger", 1.5, "≤ 1.5× (flat)")
    versus(f"readiness tick, {book['tick_open']} open + {book['closed']:,} closed orders (median of {book['ticks']})",
           "tick_closed_s", "closed", "alone", f"{book['tick_open']} open alone", 1.5, "≤ 1.5× (open only)")
    ticks = ms["tick_unresolved_s"]
    first = min(ticks, key=int)
    for size in sorted(ticks, key=int)[1:]:
        per, base = ticks[size] / int(size), ticks[first] / int(first)
        row(f"readiness tick, {int(size):,} unresolved orders", f"{ticks[size]:.1f} ms ({per * 1e3:.0f} µs each)",
            f"{ticks[first]:.1f} ms ({int(first):,}: {base * 1e3:.0f} µs each)", _ratio(per / base),
            "linear: ≤ 1.5× per order", per / base <= 1.5, ratio_value=per / base)
    if not book["redis"]:
        row("Redis rows", "not run: no redis-server (bench/run.sh starts one when installed)", "—", "—", "—", None)
        return
    versus(f"warm scale-out, Redis, {book['ledger']:,} ledger entries in 24 h", "redis_ledger_s", "full", "empty",
           "empty ledger", 1.5, "≤ 1.5× (flat)")
    versus(f"warm scale-out vs naive, per event, Redis (median of {2 * book['events']})", "redis_vs_naive_s", "ours",
           "naive", "naive, clients kept", 1.7, "≤ 1.7×")
    row("Redis round trips per warm scale-out (no replica: WAIT not counted)",
        f"{book['redis_trips_median']:.0f} (max {book['redis_trips_max']})", "—", "—", "≤ 6",
        book["redis_trips_max"] <= 6)


def anatomy(results: dict[str, Any]) -> list[str]:
    """Where a cold start goes (medians): spawn + interpreter, then inside the child."""
    cold = results.get("cold")
    if not cold:
        return []

    def med(kind: str, key: str) -> float:
        return median([r[key] for r in cold[kind]]) * 1e3

    lines = [f"cold-start anatomy (medians): interpreter spawn to first line {med('interpreter', 'wall_s'):.0f} ms;"]
    for kind, label in (("noop_ok_alarm", "no-op OK alarm"), ("noop_below_threshold", "no-op MNS"),
                        ("scale_out", "scale-out")):
        lines.append(f"  {label}: import index {med(kind, 'import_s'):.0f} ms, initialize (policy) "
                     f"{med(kind, 'initialize_s'):.0f} ms, handler {med(kind, 'handler_s'):.0f} ms; "
                     f"{median([r['modules'] for r in cold[kind]]):.0f} modules loaded")
    def cpu_ratio(kind: str, base: str) -> str:
        if "cpu_s" not in cold[kind][0]:
            return "?"
        return f"{median([r['cpu_s'] for r in cold[kind]]) / median([r['cpu_s'] for r in cold[base]]):.2f}×"

    def paired(kind: str, base: str) -> str:
        return f"{median([a['wall_s'] / b['wall_s'] for a, b in zip(cold[kind], cold[base], strict=True)]):.2f}×"

    lines.append(f"  ratios by CPU time (user+sys of the child; steadier than wall time on a shared machine): "
                 f"no-op {cpu_ratio('noop_ok_alarm', 'baseline_import')} / "
                 f"{cpu_ratio('noop_below_threshold', 'baseline_import')}, "
                 f"scale-out {cpu_ratio('scale_out', 'naive_scale_out')}; median of per-repetition wall "
                 f"ratios: no-op {paired('noop_ok_alarm', 'baseline_import')} / "
                 f"{paired('noop_below_threshold', 'baseline_import')}, "
                 f"scale-out {paired('scale_out', 'naive_scale_out')}")
    lines.append(f"  baseline: import ENS client {med('baseline_import', 'child_s'):.0f} ms in the child, "
                 f"{median([r['modules'] for r in cold['baseline_import']]):.0f} modules; naive scale-out "
                 f"{med('naive_scale_out', 'child_s'):.0f} ms in the child")
    return lines


def table(results: dict[str, Any]) -> str:
    header = ("figure", "ours", "baseline", "ratio", "target", "met?")
    body = [(r["figure"], r["ours"], r["baseline"], r["ratio"], r["target"], _met(r["met"]))
            for r in rows(results)]
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
             for line in [header, *body]]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    m, run = results["machine"], results["run"]
    lines += ["",
              f"machine: {m['cpu']}, {m['usable_cores']} of {m['cores']} cores usable, "
              f"{m['memory_mb']} MB RAM, {m['os']}; Python {m['python']}; "
              f"load average {m['loadavg'][0]:.2f} at start, {run['loadavg_end'][0]:.2f} at end",
              f"run: {run['reps']} cold repetitions per kind (interleaved), medians; bytecode "
              + ("cached (.pyc in a private prefix)" if run["bytecode"]
                 else "NOT cached (every start compiles from source, as FC does without shipped .pyc)")
              + f"; {run['seconds']:.0f} s in all"]
    lines += anatomy(results)
    if not run["function_dir"].endswith("functions/autoscaler"):
        lines.append(f"function code under test: {run['function_dir']}")
    missed = [r["figure"] for r in rows(results) if r["met"] is False]
    lines.append("targets missed: " + ("; ".join(missed) if missed else "none"))
    return "\n".join(lines)
