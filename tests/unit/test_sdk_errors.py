"""`sdk_errors.classify`: what an Alibaba Cloud SDK error proves, as a table.

The one question is whether the call could have taken effect. A documented refusal
(bad parameter, no permission, a bad signature: the API error pages' 400/403/404
codes) is permanent and proves nothing happened; throttling (`Throttling.*`, or the
SDK's ThrottlingException when the answer carries x-acs-retry-after) proves nothing
happened and a later try may pass; anything else the service answers — a 5xx, an
error code not on the list, ENS's own `400 ens.interface.error` — may have happened
(transient and ambiguous). Without an answer: a connection that never opened proves
nothing was sent; a read timeout may hide a call that went through. The errors are
the SDK's own classes, raised the way `alibabacloud_tea_openapi` and `darabonba` raise
them; the connection failures are real ones against local sockets.
"""
from __future__ import annotations

import socket
from typing import Iterator

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException
from darabonba.core import DaraCore
from darabonba.exceptions import RetryError, UnretryableException
from darabonba.policy.retry import RetryPolicyContext
from darabonba.request import DaraRequest

from ens_autoscaler.cloud.sdk_errors import classify
from ens_autoscaler.core.errors import AutoscalerError, PermanentCloudError, TransientCloudError

PERMANENT, REFUSED_FOR_NOW, MAYBE_DONE = "permanent", "transient, nothing happened", "transient, ambiguous"


def what(error: AutoscalerError) -> str:
    if isinstance(error, PermanentCloudError):
        return PERMANENT
    assert isinstance(error, TransientCloudError), error
    return MAYBE_DONE if error.ambiguous else REFUSED_FOR_NOW


ANSWERED = [
    # (case, the SDK's error, what it proves, the code it keeps)
    ("a bad parameter is refused before anything happens",
     ClientException(status_code=400, code="InvalidParameter.RegionId", message="bad region"), PERMANENT,
     "InvalidParameter.RegionId"),
    ("a missing parameter", ClientException(status_code=400, code="MissingParameter", message="AppId"), PERMANENT,
     "MissingParameter"),
    ("no permission (RAM)", ClientException(status_code=403, code="Forbidden.RAM", message="not authorized"),
     PERMANENT, "Forbidden.RAM"),
    ("no permission (ENS)", ClientException(status_code=403, code="NoPermission", message="denied"), PERMANENT,
     "NoPermission"),
    ("an unknown AccessKey", ClientException(status_code=404, code="InvalidAccessKeyId.NotFound", message="?"),
     PERMANENT, "InvalidAccessKeyId.NotFound"),
    ("a bad signature", ClientException(status_code=400, code="SignatureDoesNotMatch", message="sig"), PERMANENT,
     "SignatureDoesNotMatch"),
    ("an API the endpoint does not have", ClientException(status_code=404, code="InvalidAction.NotFound",
                                                          message="?"), PERMANENT, "InvalidAction.NotFound"),
    ("throttled, by code", ClientException(status_code=400, code="Throttling.User", message="flow control"),
     REFUSED_FOR_NOW, "Throttling.User"),
    ("throttled, by the SDK's class (x-acs-retry-after)",
     ThrottlingException(status_code=429, code="TooManyRequests", message="slow down", retry_after=2000),
     REFUSED_FOR_NOW, "TooManyRequests"),
    ("a 500 may have happened", ServerException(status_code=500, code="InternalError", message="unknown"),
     MAYBE_DONE, "InternalError"),
    ("a 503 may have happened", ServerException(status_code=503, code="ServiceUnavailable", message="busy"),
     MAYBE_DONE, "ServiceUnavailable"),
    ("ENS's own 400 'Failed to call API' may have happened",
     ClientException(status_code=400, code="ens.interface.error", message="Failed to call API"), MAYBE_DONE,
     "ens.interface.error"),
    ("a 4xx code not on the refusal list may have happened",
     ClientException(status_code=400, code="IncorrectDeviceStatus", message="?"), MAYBE_DONE,
     "IncorrectDeviceStatus"),
]


@pytest.mark.parametrize("case,exc,proves,code", ANSWERED, ids=[c[0] for c in ANSWERED])
def test_an_answered_error(case: str, exc: Exception, proves: str, code: str) -> None:
    error = classify(exc, "ENS RescaleDeviceService")
    assert (what(error), error.code) == (proves, code)
    assert str(error).startswith(f"ENS RescaleDeviceService failed: {code} (HTTP ")


def test_throttling_keeps_the_wait_the_cloud_asked_for_in_seconds() -> None:
    error = classify(ThrottlingException(status_code=429, code="Throttling", retry_after=2500), "ENS X")
    assert isinstance(error, TransientCloudError) and error.retry_after == 2.5
    error = classify(ClientException(status_code=400, code="Throttling.Api"), "ENS X")
    assert isinstance(error, TransientCloudError) and error.retry_after is None


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):  # darabonba would send through it
        monkeypatch.delenv(name, raising=False)


def sdk_call(port: int, read_timeout_ms: int = 2000) -> Exception:
    """What the SDK raises when its HTTP request fails: darabonba turns the IOError into a RetryError,
    and the client, its retries spent, raises UnretryableException around it."""
    request = DaraRequest()
    request.headers = {"host": "127.0.0.1"}
    request.port = port
    try:
        DaraCore.do_action(request, {"connectTimeout": 1000, "readTimeout": read_timeout_ms})
    except RetryError as exc:
        return UnretryableException(RetryPolicyContext(retries_attempted=0, http_request=request, exception=exc))
    raise AssertionError("the call was answered")


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when the socket goes: a connection is refused


@pytest.fixture
def silent_port() -> Iterator[int]:
    with socket.socket() as s:  # listens (the kernel completes the handshake) but never answers
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        yield int(s.getsockname()[1])


def test_a_connection_that_never_opened_proves_nothing_was_sent_and_names_the_endpoint(closed_port: int) -> None:
    error = classify(sdk_call(closed_port), "ENS DescribeDeviceService", "127.0.0.1 (ENS_ENDPOINT)")
    assert (what(error), error.code) == (REFUSED_FOR_NOW, "NotSent")
    assert "(no connection to 127.0.0.1 (ENS_ENDPOINT))" in str(error)


def test_a_read_timeout_may_hide_a_call_that_went_through(silent_port: int) -> None:
    error = classify(sdk_call(silent_port, read_timeout_ms=200), "ENS RescaleDeviceService")
    assert (what(error), error.code) == (MAYBE_DONE, "NoResponse")


def test_our_own_error_raised_inside_the_sdk_says_what_it_is() -> None:
    ours = PermanentCloudError("no usable Alibaba Cloud credentials: none set", code="InvalidCredentials")
    wrapped = UnretryableException(RetryPolicyContext(retries_attempted=0, exception=ours))
    assert classify(wrapped, "ENS RescaleDeviceService") is ours


def test_an_error_that_is_no_answer_at_all_may_have_happened() -> None:
    error = classify(ConnectionResetError("Connection reset by peer"), "CloudMonitor DescribeMetricList")
    assert (what(error), error.code) == (MAYBE_DONE, "NoResponse")
    assert str(error) == "CloudMonitor DescribeMetricList failed: no answer (ConnectionResetError)"
