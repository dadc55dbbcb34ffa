"""The command line of the state commands — `status`, `history`, `resolve` — beside `cli.py`:
their arguments, the store they read (`watched`) and the one `command` that runs each.

What each does is elsewhere: `fleet_status`, `order_history` and `resolve`; what it prints is
`state_display`.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Any, Callable, Mapping

from ..core.errors import ConfigError
from ..runtime.settings import Settings, redact_url
from ..state import sqlite_file
from .fleet_status import status
from .order_history import history, told_open
from .resolve import resolve

clock: Callable[[], float] = time.time  # the commands' `now`; a test sets it, nothing sleeps


def arguments(name: str, s: argparse.ArgumentParser) -> None:
    if name == "history":
        s.add_argument("--hours", type=_hours, default=24.0, help="how far back (default 24)")
    elif name == "resolve":
        s.add_argument("invocation_id", help="the order's invocation id (`status` and `history` show it)")
        said = s.add_mutually_exclusive_group(required=True)
        said.add_argument("--devices", type=_device_ids,
                          help="the devices it made, comma-separated (b-…): each must be listed by ENS")
        said.add_argument("--not-ordered", action="store_true", help="it never reached ENS: release "
                                                                     "its ledger entries")


def _hours(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        hours = float("nan")
    if not 0 < hours < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of hours, got {text!r}")
    return hours


def _device_ids(text: str) -> tuple[str, ...]:
    ids = tuple(i.strip() for i in text.split(","))
    if not all(ids):
        raise argparse.ArgumentTypeError(f"expected device ids separated by commas (b-1,b-2), got {text!r}")
    return ids


def watched(settings: Settings, env: Mapping[str, str]) -> str:
    """The store the commands read, as it may be shown — or an error naming it when it cannot be
    the function's: an empty store that `status` opened would look like a healthy, idle fleet."""
    url, scheme = settings.state_url, settings.state_url.partition(":")[0].lower()
    named = redact_url(url) + ("" if env.get("STATE_URL") else " (the default: STATE_URL is unset)")
    point = "point STATE_URL at the store the function writes (see \"Where state lives\")"
    if scheme == "memory":
        raise ConfigError(f"STATE_URL={named} is one process's memory: another process's state is never in it; "
                          f"{point}")
    if scheme == "sqlite" and not os.path.exists(sqlite_file(url)):
        raise ConfigError(f"no state store at {named}: the file does not exist, so nothing has written it; "
                          f"{point}")
    return named


def command(args: argparse.Namespace) -> dict[str, Any]:
    from ..runtime.app import Autoscaler

    settings = Settings.from_env()
    named = watched(settings, os.environ)  # before the store is opened: opening creates a SQLite file
    scaler = Autoscaler(settings, clock=clock)
    if args.command == "status":
        return status(scaler.store, scaler.policy, scaler.clock(), named, settings.state_scope,
                      lambda: scaler.actuator.inventory(scaler.policy.service)).as_dict()
    if args.command == "history":
        return {"status": "history", "hours": args.hours, "orders": history(scaler.store, scaler.clock(), args.hours)}
    order = resolve(scaler, args.invocation_id, None if args.not_ordered else args.devices)
    return {"status": "resolved", "order": told_open(order),
            "note": "its messages are queued in the outbox: the next invocation publishes them"}
