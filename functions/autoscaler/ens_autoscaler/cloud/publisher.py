"""Publishes one JSON message per scale-out to the MNS topic.

The SDK re-sends a request by itself when a connection drops, so a message can
arrive twice: the message's stable `id` is how consumers drop the copy.
The MNS SDK asks its credentials provider on every request, so a rotated STS
token is picked up without rebuilding anything.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

from ..core.errors import PermanentCloudError, TransientCloudError
from .credentials import CredentialSource, default_source

TIMEOUT_S = 10
# Codes that refuse this one message (too large, malformed) for good: another message may pass.
REFUSED_MESSAGE_CODES = {"InvalidArgument", "MessageBodyInvalid", "MessageTagInvalid"}
# Codes that no retry can fix; anything else from MNS (5xx, throttling, network) may pass later.
PERMANENT_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "TopicNotExist"} | \
    REFUSED_MESSAGE_CODES


class _SourceProvider:
    """The MNS SDK's credentials-provider protocol, asked on every request."""

    def __init__(self, source: CredentialSource) -> None:
        self._source = source

    def get_credentials(self) -> Any:
        from mns.auth import Credentials

        pair = self._source.key_pair()
        return Credentials(pair.access_key_id, pair.access_key_secret, pair.security_token)


class MnsPublisher:
    def __init__(self, endpoint: str, topic: str,
                 credentials: Callable[[], CredentialSource] = default_source) -> None:
        self._endpoint = endpoint if "://" in endpoint else f"https://{endpoint}"
        self._topic_name = topic
        self._credentials = credentials
        self._topic: Any = None
        self._lock = threading.Lock()  # the SDK shares one HTTP connection per Account

    def _mns_topic(self) -> Any:
        if self._topic is None:
            from mns.account import Account

            account = Account(self._endpoint, credentials_provider=_SourceProvider(self._credentials()))
            account.mns_client.set_connection_timeout(TIMEOUT_S)
            self._topic = account.get_topic(self._topic_name)
        return self._topic

    def publish(self, body: str, tag: str) -> str:
        """Publish and return the MNS MessageId."""
        from mns.mns_exception import MNSExceptionBase, MNSServerException
        from mns.topic import TopicMessage

        try:
            with self._lock:
                return self._mns_topic().publish_message(TopicMessage(body, tag)).message_id
        except MNSExceptionBase as exc:
            text = f"MNS PublishMessage to {self._topic_name} failed: {exc.type}: {exc.message}"
            if isinstance(exc, MNSServerException) and exc.type in PERMANENT_CODES:
                raise PermanentCloudError(text, code=exc.type) from exc
            raise TransientCloudError(text, code=exc.type) from exc
        except OSError as exc:
            raise TransientCloudError(f"MNS PublishMessage to {self._topic_name} failed: {exc}",
                                      code="NetworkError") from exc
