"""Run the function once, end to end, on this machine: the README's run command.

Starts the emulator on a loopback port, points the function at it (ENS, MNS,
SQLite state under /tmp), invokes `index.handler` on an event file exactly as FC
would (bytes in, JSON out) and shows what happened on the wire: the decision,
the RescaleDeviceService call ENS received and the message MNS received.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

from localcloud import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, DEFAULT_TOPIC, LocalCloud

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_TOKEN = "example-callback-token"  # the ?token= the sample HTTP events carry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("event", nargs="?", default=str(ROOT / "events" / "cms-http-alarm.json"))
    parser.add_argument("--dry-run", action="store_true", help="DRY_RUN=true: never call RescaleDeviceService")
    args = parser.parse_args(argv)
    state = Path(tempfile.mkdtemp(prefix="ens-autoscaler-")) / "state.db"
    with LocalCloud() as cloud:
        os.environ.update(
            ENS_ENDPOINT=cloud.url, MNS_ENDPOINT=cloud.url, MNS_TOPIC=DEFAULT_TOPIC,
            ALIBABA_CLOUD_ACCESS_KEY_ID=DEFAULT_ACCESS_KEY_ID,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET=DEFAULT_ACCESS_KEY_SECRET,
            STATE_URL=f"sqlite:///{state}", CALLBACK_TOKEN=SAMPLE_TOKEN,
            DRY_RUN="true" if args.dry_run else "false",
        )
        sys.path.insert(0, str(ROOT / "functions" / "autoscaler"))
        import index

        print(f"local cloud at {cloud.url}; state in {state}\nevent: {args.event}\n")
        context = SimpleNamespace(request_id="local-run-1", function=SimpleNamespace(timeout=60))
        returned = json.loads(index.handler(Path(args.event).read_bytes(), context))
        result = json.loads(returned["body"]) if "statusCode" in returned else returned
        _show("decisions", result.get("decisions") or result.get("error"))
        for call in cloud.calls_for("RescaleDeviceService"):
            _show("ENS received RescaleDeviceService", call["params"])
        for message in cloud.messages(DEFAULT_TOPIC):
            _show(f"MNS received a message (tag {message['tag']})", json.loads(message["body"]))
        status = f" (HTTP {returned['statusCode']})" if "statusCode" in returned else ""
        _show(f"handler returned{status}", result)
    return 0 if result.get("status") != "rejected" else 1


def _show(title: str, value: object) -> None:
    print(f"== {title}\n{json.dumps(value, indent=2, ensure_ascii=False)}\n")


if __name__ == "__main__":
    raise SystemExit(main())
