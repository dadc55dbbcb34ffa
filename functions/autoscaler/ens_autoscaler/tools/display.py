"""What a person reads: the handler's result as a decision table and a few lines.

Shared by the CLI and the run command (`localcloud/run.py`), so both say the same
thing the same way. A cell too wide for its column is cut with an ellipsis, never
silently: a rule or a dedupe key that looks whole but is not misleads.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any, Mapping, Sequence

from ..core.errors import AutoscalerError, ConfigError, InputError, PublishDeferred
from ..core.planner import GUARDS
from ..core.vocab import epoch_iso

ELLIPSIS = "…"
# (heading, widest the column grows to); the last column is never cut.
COLUMNS = (("region", 32), ("signal", 44), ("metric", 20), ("value", 10), ("rule", 44), ("raw", 5),
           ("final", 5), ("reasons", 0))
CAPS = frozenset(reason.value for guard in GUARDS for reason in guard.reasons)  # what can cut a count
EXIT_CODES = {"invalid": 1, "rejected": 1, "failed": 2}  # any other status: 0, or EXIT_CUT
EXIT_CUT = 3  # done, but a manual request got fewer devices than it asked for (a cap cut it)
VERBOSE_HANDLER = "ens-autoscaler -v"
SDK_LOGGERS = ("credentials", "darabonba-core")  # alibabacloud-credentials, the Tea core


def failure(exc: AutoscalerError | OSError) -> dict[str, Any]:
    """A raised error as a result: bad configuration, bad input, or a failure worth retrying.

    An order ENS took whose message MNS has not is no failure to a person: told `failed`, they
    would send the request again with a new id, and order twice.
    """
    if isinstance(exc, PublishDeferred):
        return {**exc.result, "note": "ENS took the order; its message is queued in the outbox (MNS did not "
                                      "take it yet): a retry or the next invocation publishes it. Do not send "
                                      "the request again under a new id: that would order again."}
    status = "invalid" if isinstance(exc, ConfigError) else "rejected" if isinstance(exc, InputError) else "failed"
    kind = exc.kind if isinstance(exc, AutoscalerError) else "io"
    return {"status": status, "error": {"type": kind, "message": str(exc)}}


def exit_code(result: dict[str, Any]) -> int:
    """The process exit code for a result, the same for the CLI and the run command."""
    return EXIT_CODES.get(result.get("status", ""), EXIT_CUT if cut_requests(result) else 0)


def print_quietly(text: str) -> None:
    """Print; a reader that went away (`--json | head`) ends the output quietly, not with a traceback."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # Python flushes stdout again at exit and would report the broken pipe there: point it elsewhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def show_logs() -> None:
    """`-v`: the function's JSON log lines on stderr, as the logstore would get them. Once:
    a second call replaces the first handler rather than printing every line twice."""
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(VERBOSE_HANDLER)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("ens_autoscaler")
    for old in [h for h in logger.handlers if h.get_name() == VERBOSE_HANDLER]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def quiet_sdk_logs() -> None:
    """A person reads our one error, not the SDKs' tracebacks of the same failure: the credentials
    chain logs each provider's exception, which Python would print on stderr for want of a handler."""
    for name in SDK_LOGGERS:
        sdk = logging.getLogger(name)
        if not sdk.handlers:
            sdk.addHandler(logging.NullHandler())
        sdk.propagate = False


class Progress:
    """`replayed 1200/43200 ticks` on one line of a terminal, rewritten at most every 1 %."""

    def __init__(self, stream: Any) -> None:
        self._stream, self._shown = stream, -1

    def __call__(self, done: int, total: int) -> None:
        percent = done * 100 // max(total, 1)
        if percent != self._shown:
            self._shown = percent
            end = "\n" if done >= total else ""
            self._stream.write(f"\rreplayed {done}/{total} ticks ({percent} %){end}")
            self._stream.flush()


def decision_table(decisions: Sequence[dict[str, Any]]) -> str:
    """One row per region: what was read, which rule fired, and every guard that changed the count."""
    return "\n".join(table([name for name, _ in COLUMNS], [_decision_row(d) for d in decisions],
                           caps=[cap for _, cap in COLUMNS]))


def _decision_row(d: Mapping[str, Any]) -> list[str]:
    """A decision's cells, "-" for what it does not have (no metric, no rule fired, no guard cut it)."""
    return [d["region"], _signals(d["signals"]), d.get("metric") or "-", _number(d.get("value")),
            d["rule"] or "-", str(d["raw"]), str(d["final"]), ", ".join(d["reasons"]) or "-"]


def table(columns: Sequence[str], rows: Sequence[Sequence[str]],
          caps: Sequence[int | None] | None = None) -> list[str]:
    """Columns as wide as their widest cell, two spaces apart, a rule under the heading: the decision
    table, `simulate` and `advise` print alike. A cap keeps one long cell (a signal key, a rule) from
    pushing the rest of a row off a terminal; the cell is cut with an ellipsis."""
    widths = [max(len(row[i]) for row in [columns, *rows]) for i in range(len(columns))]
    widths = [min(w, cap) if cap else w for w, cap in zip(widths, caps or [None] * len(columns))]
    return ["  ".join(_fit(c, w) for c, w in zip(row, widths)).rstrip()
            for row in [columns, ["-" * w for w in widths], *rows]]


def cut_requests(result: dict[str, Any]) -> list[str]:
    """Manual requests that got fewer devices than they asked for, one sentence each.

    An alarm held back by a cap is the cap doing its job; a person who asked for N
    devices by hand and got fewer must be told, or they will think N are coming.
    """
    return [f"manual request {', '.join(d['signals'])} asked for {d['raw']} in {d['region']}, got {d['final']} "
            f"({', '.join(r for r in d['reasons'] if r in CAPS)})"
            for d in result.get("decisions") or ()
            if d["final"] < d["raw"] and any(s.startswith("manual:") for s in d["signals"])]


def render(result: dict[str, Any]) -> str:
    """The handler's result as a person reads it: what kind of answer, the decision table, what was
    sent to ENS and what came of it."""
    parts = [f"status: {result['status']}", *_preamble(result)]
    if result.get("decisions"):
        parts.append(decision_table(result["decisions"]))
    return "\n".join(parts + _sent(result) + _outcome(result))


def _preamble(result: dict[str, Any]) -> list[str]:
    """What kind of answer this is: a replayed one, the readiness timer's, or an error."""
    parts = []
    if result.get("replayed"):
        parts.append(f"replayed: a duplicate delivery of {result['invocationId']}; this is its stored answer, "
                     "nothing was ordered again")
    if result["status"] == "follow_up" and "openOrders" in result:  # `plan` of the timer followed nothing
        parts.append(_follow_up_line(result))
    if result.get("error"):
        parts.append(f"error ({result['error']['type']}): {result['error']['message']}")
    return parts


def _sent(result: dict[str, Any]) -> list[str]:
    """The signals rejected, the ResourceSelector sent to ENS, and what it adds to the run rate."""
    parts = [f"rejected {r['dedupeKey']} ({r['source']}): {r['error']}" for r in result.get("rejections") or ()]
    if "resourceSelector" in result:
        parts.append("ResourceSelector: " + json.dumps(result["resourceSelector"]))
    return parts + run_rate_added(result.get("decisions") or ())


def _outcome(result: dict[str, Any]) -> list[str]:
    """ENS's order, the scale-out message, the manual requests a cap cut, and any note."""
    parts = []
    if result.get("order"):
        parts.append(f"ENS OrderId {result['order']['OrderId']}, DeviceIds {result['order']['DeviceIds']}")
    if result.get("message"):
        parts.append(f"message {result['message']['id']}: published={result['message'].get('published')}")
    parts += [f"cut: {line}" for line in cut_requests(result)]
    if result.get("note"):
        parts.append(f"note: {result['note']}")
    return parts


def run_rate_added(decisions: Sequence[dict[str, Any]]) -> list[str]:
    """What the order adds to the bill, in all (each decision carries its own `runRateAdded`)."""
    rates = [d["runRateAdded"] for d in decisions if d.get("runRateAdded")]
    if not rates:
        return []
    currency = rates[0]["currency"]
    return [f"run rate added: {money(sum(r['hourly'] for r in rates))} {currency}/hour, "
            f"{money(sum(r['monthly'] for r in rates))} {currency}/month"]


def money(amount: float) -> str:
    """An amount of money as a person reads it: two decimals, thousands apart."""
    return f"{amount:,.2f}"


def _follow_up_line(result: Mapping[str, Any]) -> str:
    """What the readiness timer did: the orders it closed, and those still on their way."""
    closed, still = result.get("closedOrders") or (), result.get("openOrders") or ()
    lines = [f"the readiness timer checked the open orders against ENS: {len(closed)} closed, "
             f"{len(still)} still open" + ("" if closed or still else " (there were none)")]
    lines += [f"  closed: {order_line(o)}" for o in closed] + [f"  open: {order_line(o)}" for o in still]
    return "\n".join(lines)


def order_line(o: Mapping[str, Any]) -> str:
    """One order on one line: `status`, `resolve` and the readiness timer's answer show it alike."""
    regions = ", ".join(f"{r} +{n}" for r, n in o["regions"].items())
    return (f"{o['invocationId']}  {o['phase']}  since {when(o['startedAt'])}  {regions}  "
            f"OrderId {order_id_text(o['OrderId'], o.get('resolvedBy'))}  {o['ready']}/{o['devices']} ready" +
            (f"  ({o['outcome']})" if o["outcome"] else ""))


def order_id_text(order_id: str | None, by: str | None) -> str:
    """An order's OrderId as a person reads it: without one, say whether evidence named its devices."""
    if order_id is not None:
        return order_id
    return "unknown: ENS's answer was lost, its devices were found by set difference" if by == "evidence" else "?"


def when(epoch: float) -> str:
    return epoch_iso(round(epoch))  # a person reads seconds; `--json` keeps the exact time


def _fit(cell: str, width: int) -> str:
    return (cell if len(cell) <= width else cell[:width - 1] + ELLIPSIS).ljust(width)


def _signals(keys: Sequence[str]) -> str:
    return keys[0] + more_signals(keys) if keys else "-"


def more_signals(keys: Sequence[str]) -> str:
    """` (+2)`: how many signals beyond the first one a decision acted on ("" for one)."""
    return f" (+{len(keys) - 1})" if len(keys) > 1 else ""


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
