"""``python -m localcloud``: run the emulator in the foreground.

The first stdout line is the URL (flushed), so a script can start this in the
background and read where it listens; SIGTERM or Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .cloud import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, DEFAULT_TOPIC, LocalCloud
from .lifecycle import REAL_ENS, Lifecycle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud",
                                     description="Local ENS + MNS emulator on loopback HTTP.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8899, help="0 picks a free port")
    parser.add_argument("--access-key-id", default=DEFAULT_ACCESS_KEY_ID)
    parser.add_argument("--access-key-secret", default=DEFAULT_ACCESS_KEY_SECRET)
    parser.add_argument("--topic", action="append", dest="topics",
                        help=f"an MNS topic that exists (repeatable; default {DEFAULT_TOPIC})")
    parser.add_argument("--list-lag", type=float, default=REAL_ENS.list_lag_s, metavar="SECONDS",
                        help="virtual seconds before DescribeDeviceService lists a new order's devices")
    parser.add_argument("--provisioning", type=float, default=REAL_ENS.provisioning_s, metavar="SECONDS",
                        help="virtual seconds a new device stays CREATING")
    parser.add_argument("--failed-fraction", type=float, default=REAL_ENS.failed_fraction,
                        metavar="F", help="fraction of each order's devices (rounded up) that fail")
    args = parser.parse_args(argv)
    try:
        lifecycle = Lifecycle(list_lag_s=args.list_lag, provisioning_s=args.provisioning,
                              failed_fraction=args.failed_fraction)
    except ValueError as bad:
        parser.error(str(bad))

    cloud = LocalCloud(credentials={args.access_key_id: args.access_key_secret},
                       topics=args.topics or [DEFAULT_TOPIC], host=args.host, port=args.port,
                       lifecycle=lifecycle)
    try:
        cloud.start()
    except OSError as err:
        print(f"localcloud: cannot listen on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 1
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    print(cloud.url, flush=True)
    try:
        stopping.wait()
    finally:
        cloud.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
