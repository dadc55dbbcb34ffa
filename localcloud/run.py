"""Run the function once, end to end, on this machine: the README's run command.

Starts the emulator on a loopback port, points the function at it (ENS, MNS,
SQLite state), invokes `index.handler` on an event file exactly as FC would
(bytes in, JSON out) and says what happened: the decisions as a table, the order
ENS received, the message MNS received. `--json` prints all of it, wire included.
State lives in a temporary directory removed at exit, unless `--state FILE` keeps
it, so that running the same event again shows what a duplicate delivery does.

Each run starts a fresh emulator whose clock stands still, so an order never
finishes on its own: `--until-ready` lets that clock run a minute at a time and
fires the readiness timer each minute, as FC's timer trigger would, until no
order is open (at most the order's Timeout), to show an order finishing.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from localcloud import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, DEFAULT_TOPIC, LocalCloud

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_TOKEN = "example-callback-token"  # the ?token= the sample HTTP events carry
FOLLOW_UP = "ens-autoscaler:follow-up"  # the readiness timer's payload (events/timer-readiness.json)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("event", nargs="?", type=Path, default=ROOT / "events" / "cms-http-alarm.json")
    parser.add_argument("--dry-run", action="store_true", help="DRY_RUN=true: never call RescaleDeviceService")
    parser.add_argument("--state", type=Path, metavar="FILE",
                        help="keep the SQLite state in FILE between runs (default: a temporary file, removed)")
    parser.add_argument("--json", action="store_true", help="print everything as one JSON document")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print the log lines (stderr)")
    parser.add_argument("--until-ready", action="store_true",
                        help="then let the emulator's clock run and fire the readiness timer each minute until "
                             "no order is open")
    args = parser.parse_args(argv)
    try:  # bad arguments fail here, before anything starts
        event = args.event.read_bytes()
    except OSError as exc:
        parser.error(f"cannot read the event file {args.event}: {exc.strerror}")
    if args.state is not None and not args.state.resolve().parent.is_dir():
        parser.error(f"--state {args.state}: the folder {args.state.resolve().parent} does not exist")
    sys.path.insert(0, str(ROOT / "functions" / "autoscaler"))
    from ens_autoscaler.tools.display import exit_code, print_quietly, quiet_sdk_logs, show_logs

    quiet_sdk_logs()
    if args.verbose:
        show_logs()
    with ExitStack() as stack:
        state = args.state.resolve() if args.state else \
            Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ens-autoscaler-"))) / "state.db"
        cloud = stack.enter_context(LocalCloud())
        report = _invoke(cloud, event, state, args.dry_run, args.until_ready)
        report.update(event=str(args.event), state=str(state) if args.state else None)
    print_quietly(json.dumps(report, indent=2, ensure_ascii=False) if args.json else _summary(report))
    return exit_code(report["result"])


def _invoke(cloud: LocalCloud, event: bytes, state: Path, dry_run: bool, until_ready: bool) -> dict[str, Any]:
    os.environ.update(
        ENS_ENDPOINT=cloud.url, MNS_ENDPOINT=cloud.url, MNS_TOPIC=DEFAULT_TOPIC,
        ALIBABA_CLOUD_ACCESS_KEY_ID=DEFAULT_ACCESS_KEY_ID,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=DEFAULT_ACCESS_KEY_SECRET,
        STATE_URL=f"sqlite:///{state}", CALLBACK_TOKEN=SAMPLE_TOKEN,
        DRY_RUN="true" if dry_run else "false",
    )
    import index
    from ens_autoscaler.tools.display import failure
    from ens_autoscaler.core.errors import AutoscalerError

    context = SimpleNamespace(request_id="local-run-1", function=SimpleNamespace(timeout=60))
    try:
        returned = json.loads(index.handler(event, context))
    except AutoscalerError as exc:  # raised on purpose, for FC to retry or report
        returned = failure(exc)
    http = "statusCode" in returned  # the HTTP trigger's answer wraps the result
    result = json.loads(returned["body"]) if http else returned
    return {
        "httpStatus": returned["statusCode"] if http else None,
        "result": result,
        "followUps": _until_ready(cloud, context) if until_ready and result.get("status") != "rejected" else [],
        "ensReceived": [call["params"] for call in cloud.calls_for("RescaleDeviceService")],
        "mnsReceived": [{"MessageId": m["MessageId"], "tag": m["tag"], "body": json.loads(m["body"])}
                        for m in cloud.messages(DEFAULT_TOPIC)],
    }


def _until_ready(cloud: LocalCloud, context: Any) -> list[dict[str, Any]]:
    """The readiness timer, once a minute of emulator time, until no order is open or the open
    orders' Timeout has passed on that clock: what FC's timer trigger does while a person waits.
    (The function's own clock is the wall clock: it never sees a Timeout pass in this run.)"""
    import index
    from ens_autoscaler.core.vocab import epoch_iso

    answers: list[dict[str, Any]] = []
    while True:
        cloud.advance(60)
        timer = {"triggerTime": epoch_iso(cloud.now), "triggerName": "readiness", "payload": FOLLOW_UP}
        answer = json.loads(index.handler(json.dumps(timer).encode(), context))
        answers.append(answer)
        still = answer["openOrders"]
        if not still or 60 * len(answers) > max(o["timeoutAt"] - o["startedAt"] for o in still):
            return answers


def _summary(report: dict[str, Any]) -> str:
    from ens_autoscaler.tools.display import render

    http = f" (HTTP {report['httpStatus']})" if report["httpStatus"] is not None else ""
    state = report["state"] or "temporary, removed at exit (--state FILE keeps it)"
    lines = [f"event: {report['event']}{http}", f"state: {state}", render(report["result"])]
    if report["followUps"]:
        from ens_autoscaler.tools.display import order_line

        runs = report["followUps"]
        lines.append(f"readiness timer: fired {len(runs)} time{'s' * (len(runs) != 1)}, "
                     "a minute of emulator time apart; "
                     f"{len(runs[-1]['openOrders'])} orders still open")
        lines += [f"  +{i} min: closed {order_line(o)}" for i, run in enumerate(runs, 1) for o in run["closedOrders"]]
        lines += [f"  still open: {order_line(o)}" for o in runs[-1]["openOrders"]]
    calls = report["ensReceived"]
    lines.append(f"ENS received {len(calls)} RescaleDeviceService call{'s' * (len(calls) != 1)}"
                 + "".join(f"\n  ResourceSelector {c.get('ResourceSelector')}" for c in calls))
    messages = report["mnsReceived"]
    lines.append(f"MNS received {len(messages)} message{'s' * (len(messages) != 1)}"
                 + "".join(f"\n  MessageId {m['MessageId']} (tag {m['tag']}, id {m['body'].get('id')})"
                           for m in messages))
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
