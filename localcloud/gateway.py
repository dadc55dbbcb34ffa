"""The request path every emulated API call takes, in the cloud's order:

    authenticate → (version, action/topic exist) → fault → operation → record → reply

ENS and CloudMonitor are ACS3 RPC products and answer in JSON (Alibaba Cloud API
gateway conventions), MNS in XML; the fault and recording rules are shared so
every service misbehaves alike.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, unquote

from . import acs3, cms, ens, mns, mns_sign
from .errors import ApiError
from .faults import ERRORS_AFTER_COMMIT, LOST_BEFORE_COMMIT, REFUSALS, Fault, FaultBook
from .recording import CallLog
from .wire import Caller, Reply, Request, json_reply, new_request_id

ENS_HOST_ID = "ens.aliyuncs.com"
CMS_HOST_ID = "metrics.aliyuncs.com"
PUBLISH_PATH = re.compile(r"^/topics/([^/?]+)/messages$")
# What throttle advertises in x-acs-retry-after when inject() gave no delay.
DEFAULT_RETRY_AFTER_MS = 1000


@dataclass(frozen=True)
class RpcProduct:
    """What tells one ACS3 RPC product from another: its version, actions and error identity."""

    name: str  # as the error's Recommend link names it
    version: str
    host_id: str
    actions: Mapping[str, Callable[[Mapping[str, str]], dict[str, Any]]]

    def error(self, err: ApiError) -> Reply:
        request_id = new_request_id()
        body = {"RequestId": request_id, "HostId": self.host_id, "Code": err.code,
                "Message": err.message,
                "Recommend": f"https://api.aliyun.com/troubleshoot?q={err.code}&product={self.name}"
                             f"&requestId={request_id}"}
        return json_reply(err.status, body, {"x-acs-request-id": request_id, **err.headers}, err.code)


class Gateway:
    """Serves ENS, CloudMonitor and MNS requests against the shared inventory, metrics,
    topics, faults and log."""

    def __init__(self, secrets: Mapping[str, str], ens_service: ens.EnsService,
                 topics: mns.TopicStore, faults: FaultBook, log: CallLog,
                 nonces: acs3.NonceCache, metrics: cms.MetricStore) -> None:
        self._secrets = secrets
        self._ens = RpcProduct("Ens", ens.API_VERSION, ENS_HOST_ID, ens_service.actions)
        self._cms = RpcProduct("Cms", cms.API_VERSION, CMS_HOST_ID, metrics.actions)
        self._topics = topics
        self._faults = faults
        self._log = log
        self._nonces = nonces

    def ens(self, request: Request) -> Reply:
        return self._rpc(self._ens, request)

    def cms(self, request: Request) -> Reply:
        return self._rpc(self._cms, request)

    def _rpc(self, product: RpcProduct, request: Request) -> Reply:
        """An RPC call; the action comes from ``x-acs-action`` (ACS3) or ``Action`` (query)."""
        received = time.time()
        params = dict(request.query_pairs())
        if (request.header("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        api = request.header("x-acs-action") or params.get("Action") or "(none)"
        token_sent = request.header("x-acs-security-token") is not None
        try:
            caller = acs3.verify(request, self._secrets, self._nonces)
            version = request.header("x-acs-version") or params.get("Version")
            if version != product.version:
                raise ApiError(400, "InvalidVersion", "Specified parameter Version is not valid.")
            action = product.actions.get(api)
            if action is None:
                raise ApiError(404, "InvalidAction.NotFound",
                               "Specified api is not found, please check your url and method. "
                               f"(localcloud emulates {', '.join(sorted(product.actions))})")
        except ApiError as err:
            reply = product.error(err)
            self._record(api, params, reply.status, reply.code, acs3.claimed_access_key_id(request),
                         token_sent, received, None)
            return reply

        def operate() -> Reply:
            try:
                return json_reply(200, action(params))
            except ApiError as err:
                return product.error(err)

        return self._run(api, params, caller, received, operate,
                         lambda fault: product.error(_rpc_refusal(fault)))

    def mns(self, request: Request) -> Reply:
        """An MNS call; only topic PublishMessage is emulated."""
        received = time.time()
        host_id = f"http://{request.header('Host') or ''}"
        match = PUBLISH_PATH.match(request.path)
        if request.method != "POST" or match is None:
            return _mns_error(ApiError(501, "NotImplemented",
                                       f"localcloud does not emulate {request.method} {request.path}."),
                              host_id)
        topic = unquote(match.group(1))
        params: dict[str, Any] = {"topic": topic, "body": None, "tag": None}
        parse_error: ApiError | None = None
        try:
            params["body"], params["tag"] = mns.parse_message(request.body)
        except ApiError as err:
            parse_error = err
        try:
            caller = mns_sign.verify(request, self._secrets)
            if not self._topics.exists(topic):
                raise ApiError(404, "TopicNotExist", "The topic you provided is not exist.")
        except ApiError as err:
            reply = _mns_error(err, host_id)
            self._record("PublishMessage", params, reply.status, reply.code,
                         mns_sign.claimed_access_key_id(request),
                         request.header("security-token") is not None, received, None)
            return reply

        def operate() -> Reply:
            if parse_error is not None:
                return _mns_error(parse_error, host_id)
            stored = self._topics.publish(topic, params["body"], params["tag"])
            return _mns_reply(201, mns.message_xml(stored["MessageId"], stored["MessageBodyMD5"]))

        return self._run("PublishMessage", params, caller, received, operate,
                         lambda fault: _mns_error(_mns_refusal(fault), host_id))

    def _run(self, api: str, params: dict[str, Any], caller: Caller, received: float,
             operate: Callable[[], Reply], error: Callable[[Fault], Reply]) -> Reply:
        """Apply the next injected fault for ``api`` around the operation.

        The call is recorded when the operation has committed (or, for a fault that loses
        the request, when it has been lost), before any delay, so a test can see it while
        the client still waits. ``error`` renders a fault as the service's error answer.
        """
        fault = self._faults.take(api)
        kind = fault.kind if fault is not None else None
        if kind in LOST_BEFORE_COMMIT:
            reply = Reply(0, b"", "text/plain")  # never sent: the connection closes unanswered
            self._record(api, params, None, None, caller.access_key_id, caller.security_token,
                         received, fault)
        else:
            if kind in REFUSALS:
                reply = error(fault)
            else:
                if kind == "slow":
                    time.sleep(fault.delay)
                reply = operate()
                if kind in ERRORS_AFTER_COMMIT and reply.status < 300:
                    reply = error(fault)
            self._record(api, params, reply.status, reply.code, caller.access_key_id,
                         caller.security_token, received, fault)
        if kind in ("timeout_after_commit", "timeout_before_commit"):
            time.sleep(fault.delay)
        reply.drop = kind == "drop_after_commit" or kind in LOST_BEFORE_COMMIT
        return reply

    def _record(self, api: str, params: dict[str, Any], status: int | None, code: str | None,
                access_key_id: str | None, security_token: bool, received: float,
                fault: Fault | None) -> None:
        self._log.record(api=api, params=params, status=status, code=code,
                         access_key_id=access_key_id, security_token=security_token,
                         received=received, fault=fault)


def _rpc_refusal(fault: Fault) -> ApiError:
    """What the RPC gateway answers instead of running the action, or after running it
    (``*_after_commit``).

    ``throttle`` carries ``x-acs-retry-after`` (milliseconds): that header, and
    nothing else, is what makes tea-openapi raise ThrottlingException;
    ``throttle_plain`` omits it and surfaces as a ClientException.
    """
    if fault.kind in ("throttle", "throttle_plain"):
        headers = {}
        if fault.kind == "throttle":
            ms = max(1, round(fault.delay * 1000)) if fault.delay > 0 else DEFAULT_RETRY_AFTER_MS
            headers["x-acs-retry-after"] = str(ms)
        return ApiError(400, "Throttling.User", "Request was denied due to user flow control.", headers)
    if fault.kind == "permission":
        return ApiError(400, "NoPermission", "Permission denied.")
    if fault.kind == "interface_error_after_commit":
        # Listed in ENS error tables beside InvalidParameter.*: a 400 that says nothing of
        # whether the operation ran (terraform-provider-alicloud treats it as "not found" on reads).
        return ApiError(400, "ens.interface.error", "Failed to call API.")
    return ApiError(503, "ServiceUnavailable",
                    "The request has failed due to a temporary failure of the server.")


def _mns_refusal(fault: Fault) -> ApiError:
    if fault.kind in ("throttle", "throttle_plain"):
        return ApiError(503, "Throttling", "Request was denied due to flow control.")
    if fault.kind == "permission":
        return ApiError(403, "AccessDenied",
                        "The OwnerId that your Access Key Id associated to is forbidden for this operation.")
    if fault.kind in ("server_error", "server_error_after_commit"):
        return ApiError(500, "InternalError", "Internal error.")
    if fault.kind == "refuse_message":
        return ApiError(400, "InvalidArgument", "The message was refused: it is not valid for this topic.")
    return ApiError(503, "ServiceUnavailable", "The service is temporarily unavailable.")


def _mns_reply(status: int, body: bytes, code: str | None = None) -> Reply:
    return Reply(status, body, mns.CONTENT_TYPE,
                 {"x-mns-request-id": new_request_id().replace("-", ""),
                  "x-mns-version": mns.API_VERSION}, code)


def _mns_error(err: ApiError, host_id: str) -> Reply:
    reply = _mns_reply(err.status, b"", err.code)
    reply.body = mns.error_xml(err.code, err.message, reply.headers["x-mns-request-id"], host_id)
    return reply
