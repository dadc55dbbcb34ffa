"""LocalCloud: the public face of the emulator (start/stop, inspection, faults)."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Iterable, Mapping

from . import acs3, cms, control
from .clock import VirtualClock
from .ens import DEFAULT_SPEC, SEEDED_AGE_S, EnsService
from .faults import FaultBook
from .gateway import Gateway
from .lifecycle import REAL_ENS, RUNNING, Lifecycle
from .mns import TopicStore
from .recording import CallLog
from .server import CloudHTTPServer
from .wire import Reply, Request

DEFAULT_ACCESS_KEY_ID = "LTAI5tLocalTestKey"
DEFAULT_ACCESS_KEY_SECRET = "local-test-secret"
DEFAULT_TOPIC = "ens-scale-events"


class LocalCloud:
    """ENS + CloudMonitor + MNS on one loopback HTTP server.

    ``credentials`` maps AccessKey IDs to secrets; both signature schemes are
    checked against them. ``topics`` are the MNS topics that exist. ``lifecycle``
    is how ENS orders play out on the virtual clock; the default is ENS as
    documented (late, one by one, CREATING first), ``lifecycle.INSTANT`` is for
    tests about something else.
    """

    def __init__(self, credentials: Mapping[str, str] | None = None,
                 topics: Iterable[str] = (DEFAULT_TOPIC,),
                 host: str = "127.0.0.1", port: int = 0, lifecycle: Lifecycle = REAL_ENS) -> None:
        self._credentials = dict(credentials if credentials is not None
                                 else {DEFAULT_ACCESS_KEY_ID: DEFAULT_ACCESS_KEY_SECRET})
        self._host = host
        self._port = port
        self._initial_lifecycle = lifecycle
        self._clock = VirtualClock()
        self._ens = EnsService(self._clock, lifecycle)
        self._metrics = cms.MetricStore()
        self._topics = TopicStore(topics)
        self._faults = FaultBook()
        self._log = CallLog()
        self._nonces = acs3.NonceCache()
        self._gateway = Gateway(self._credentials, self._ens, self._topics, self._faults,
                                self._log, self._nonces, self._metrics)
        self._server: CloudHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> LocalCloud:
        """Bind (port 0 = any free port) and serve from a daemon thread."""
        if self._server is not None:
            raise RuntimeError("LocalCloud is already started")
        self._server = CloudHTTPServer((self._host, self._port), self._route)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name=f"localcloud:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close open connections; idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("LocalCloud is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the MNS endpoint, and (as ``127.0.0.1:PORT``) the ENS and
        CloudMonitor one."""
        return f"http://{self._host}:{self.port}"

    # -- inspection and control ---------------------------------------------

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Every recorded call, oldest first (a snapshot)."""
        return self._log.snapshot()

    def calls_for(self, api: str) -> list[dict[str, Any]]:
        return self._log.snapshot(api)

    @property
    def lifecycle(self) -> Lifecycle:
        """How orders placed from now on play out (lists late, provisions, fails)."""
        return self._ens.lifecycle

    @lifecycle.setter
    def lifecycle(self, lifecycle: Lifecycle) -> None:
        if not isinstance(lifecycle, Lifecycle):
            raise TypeError(f"lifecycle must be a localcloud.lifecycle.Lifecycle, got {lifecycle!r}")
        self._ens.lifecycle = lifecycle

    @property
    def now(self) -> float:
        """The virtual clock (epoch seconds) that lag, provisioning and CreateTime are measured on."""
        return self._clock.now()

    def advance(self, seconds: float) -> float:
        """Move the virtual clock on by ``seconds``; returns the new now."""
        return self._clock.advance(seconds)

    def queue_outcome(self, failed: int) -> None:
        """The next RescaleDeviceService order (after any queued before) ends with ``failed`` of
        its devices in the failed status (capped at the order's size), whatever the lifecycle's
        failed_fraction says."""
        self._ens.outcomes.push(failed)

    def queue_answer(self, named: int) -> None:
        """The next RescaleDeviceService answer (after any queued before) names only the first
        ``named`` of the devices its order made (``DeviceIds`` and ``ResourceDetailInfos``); the
        rest exist all the same and are listed by DescribeDeviceService, with their OrderId."""
        self._ens.answers.push(named)

    def inject(self, api: str, fault: str, times: int = 1, delay: float = 0.0) -> None:
        """Make the next ``times`` authenticated calls of ``api`` (an ENS Action or
        "PublishMessage") misbehave as ``fault``; see faults.FAULT_KINDS."""
        self._faults.inject(api, fault, times, delay)

    def seed_devices(self, region: str, count: int, status: str = RUNNING,
                     isp: str = "telecom", app_id: str | None = None,
                     service_id: str | None = None, spec: str = DEFAULT_SPEC,
                     age_s: float = SEEDED_AGE_S) -> list[dict[str, Any]]:
        """Add devices that already exist before the test (not recorded as calls), of `spec` (`Type`),
        created ``age_s`` ago (default: long before any rolling window)."""
        return self._ens.seed(region, count, status, isp, app_id, service_id, spec, age_s)

    def seed_metrics(self, namespace: str, metric: str, datapoints: Iterable[Mapping[str, Any]]) -> None:
        """Add CloudMonitor datapoints for DescribeMetricList: each a mapping with an integer
        ``timestamp`` (epoch ms) plus statistics and dimension keys, as the cloud sends them."""
        self._metrics.seed(namespace, metric, datapoints)

    def devices(self, region: str | None = None) -> list[dict[str, Any]]:
        return self._ens.devices(region)

    def messages(self, topic: str) -> list[dict[str, Any]]:
        """Messages published to ``topic``: MessageId, MessageBodyMD5, body, tag, time."""
        return self._topics.messages(topic)

    def reset(self) -> None:
        """Back to the just-started state: no calls, faults, devices, queued outcomes or answers, metrics,
        messages or used nonces, and the lifecycle given at construction. The clock is left
        alone: time never runs backwards."""
        self._log.clear()
        self._faults.clear()
        self._ens.reset(self._initial_lifecycle)
        self._metrics.reset()
        self._topics.clear()
        self._nonces.clear()

    # -- routing -------------------------------------------------------------

    def _route(self, request: Request) -> Reply:
        if request.path.startswith(control.PREFIX):
            return control.handle(self, request)
        if request.path.startswith(("/topics/", "/queues/")):
            return self._gateway.mns(request)
        if request.header("x-acs-version") == cms.API_VERSION:  # both are RPC on "/": the version tells
            return self._gateway.cms(request)
        return self._gateway.ens(request)
