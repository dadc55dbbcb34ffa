"""Settings every test process needs before any SDK is imported, and fixtures shared by unit and
functional tests."""
import logging
import os
from typing import Iterator

import pytest

from localcloud import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, DEFAULT_TOPIC, INSTANT, LocalCloud

# alibabacloud-credentials reads this once, at import: without it, a test that runs the default
# credential chain with no keys set would ask the ECS metadata service, an address off this machine.
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"


@pytest.fixture
def logger_restored() -> Iterator[None]:
    """-v adds a handler to the package's logger: leave the logger as the next test expects it."""
    logger = logging.getLogger("ens_autoscaler")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.fixture(scope="module")
def _running_cloud() -> Iterator[LocalCloud]:
    """The emulator, started once per module (it binds a loopback port). The product's tests get
    ENS's INSTANT lifecycle (listed and Running at once): they test the product's rules, not ENS's
    timing, which the modules of issues 10 and 13 test by overriding this fixture with the default
    lifecycle, ENS as documented."""
    with LocalCloud(credentials={DEFAULT_ACCESS_KEY_ID: DEFAULT_ACCESS_KEY_SECRET}, topics=(DEFAULT_TOPIC,),
                    lifecycle=INSTANT) as cloud:
        yield cloud


@pytest.fixture
def cloud(_running_cloud: LocalCloud) -> Iterator[LocalCloud]:
    """A started LocalCloud (AK LTAI5tLocalTestKey / local-test-secret, topic ens-scale-events), reset:
    each test sees an empty cloud with no pending faults."""
    _running_cloud.reset()
    yield _running_cloud
    _running_cloud.reset()


@pytest.fixture
def signed_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator's access key in the default credential chain's environment variables, as FC sets them."""
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", DEFAULT_ACCESS_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", DEFAULT_ACCESS_KEY_SECRET)
