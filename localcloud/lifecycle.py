"""How a RescaleDeviceService order plays out over (virtual) time.

Sources, and where they are silent the hostile reading this emulator takes:

* RescaleDeviceService is asynchronous: ``Timeout`` is "the timeout period for
  asynchronous resource scaling, in seconds. Default value: 300"
  (SDK model ``_rescale_device_service_request.py``; API page
  api-ens-2017-11-10-rescaledeviceservice). So the answer's devices need not
  exist yet, let alone run.
* Nothing says when DescribeDeviceService starts listing them. Hostile: only
  after ``list_lag_s``, and an order's devices appear one by one across that
  lag (the k-th of n at ``k/n × list_lag_s``), so a look in between sees part of
  an order.
* Device ``Status`` is documented only by its example, ``Running``. The one
  status enumeration the DescribeDeviceService response documents is
  ``AppStatus.Phase``: intermediate ``CREATING``, final ``RUNNING`` /
  ``CREATE_FAILED`` (SDK model ``_describe_device_service_response_body.py``).
  So a device is ``CREATING`` at first and then ``Running`` or ``CREATE_FAILED``.
* Nothing says an order's devices finish together. Hostile: one by one, the k-th
  of n (from 0) at ``(1 + k/n) × provisioning_s``, so a look in between sees an
  order partly ready.
* Nothing promises that every device of an order comes up. Hostile: a fraction
  of each order (rounded up) fails, and a test can dictate one order's outcome.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

RUNNING = "Running"
CREATING = "CREATING"
CREATE_FAILED = "CREATE_FAILED"


@dataclass(frozen=True)
class Lifecycle:
    """The knobs of ENS's asynchronous scale-out, in seconds of the virtual clock."""

    list_lag_s: float = 3.0
    provisioning_s: float = 6.0
    failed_fraction: float = 0.0
    provisioning_status: str = CREATING
    failed_status: str = CREATE_FAILED

    def __post_init__(self) -> None:
        for name in ("list_lag_s", "provisioning_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite, non-negative number of seconds, got {value!r}")
        fraction = self.failed_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
            raise ValueError(f"failed_fraction must be a number from 0 to 1, got {fraction!r}")
        for name in ("provisioning_status", "failed_status"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")

    def failures(self, count: int) -> int:
        """How many devices of an order of ``count`` fail when no outcome was queued."""
        return math.ceil(count * self.failed_fraction)


# ENS as documented (see above): listed late and one by one, CREATING before Running.
REAL_ENS = Lifecycle()
# Listed at once and Running at once: for tests of something else than ENS's timing.
INSTANT = Lifecycle(list_lag_s=0.0, provisioning_s=0.0)


@dataclass(frozen=True)
class Timeline:
    """When one ordered device shows up in DescribeDeviceService, when it stops provisioning,
    and the status it ends in."""

    listed_at: float
    ready_at: float
    final_status: str
    pending_status: str

    def status(self, now: float) -> str:
        return self.final_status if now >= self.ready_at else self.pending_status

    def listed(self, now: float) -> bool:
        return now >= self.listed_at


def plan_order(lifecycle: Lifecycle, count: int, ordered_at: float, failed: int) -> list[Timeline]:
    """The timelines of an order's ``count`` devices; the last ``failed`` of them fail."""
    return [Timeline(listed_at=ordered_at + lifecycle.list_lag_s * (k + 1) / count,
                     ready_at=ordered_at + lifecycle.provisioning_s * (1 + k / count),
                     final_status=lifecycle.failed_status if k >= count - failed else RUNNING,
                     pending_status=lifecycle.provisioning_status)
            for k in range(count)]


class OutcomeQueue:
    """Per-order counts a test dictates, one per order in the order they are placed: how many of
    the next order's devices fail (``failed``), or how many its answer names (``named``)."""

    def __init__(self, what: str = "failed") -> None:
        self.what = what
        self._counts: deque[int] = deque()
        self._lock = threading.Lock()

    def push(self, count: int) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"{self.what} must be a non-negative integer, got {count!r}")
        with self._lock:
            self._counts.append(count)

    def take(self) -> int | None:
        """The dictated count of the order being placed, if any."""
        with self._lock:
            return self._counts.popleft() if self._counts else None

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()
