"""localcloud: a loopback emulator of the ENS and MNS APIs ens-autoscaler calls.

Real HTTP, real signatures (ACS3-HMAC-SHA256 for ENS, MNS HMAC-SHA1), real SDKs
as clients; see README.md.
"""

from .cloud import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, DEFAULT_TOPIC, LocalCloud
from .faults import FAULT_KINDS
from .lifecycle import INSTANT, REAL_ENS, Lifecycle

__all__ = ["DEFAULT_ACCESS_KEY_ID", "DEFAULT_ACCESS_KEY_SECRET", "DEFAULT_TOPIC", "FAULT_KINDS",
           "INSTANT", "REAL_ENS", "Lifecycle", "LocalCloud"]
