"""Settings every test process needs before any SDK is imported, and fixtures shared by unit and
functional tests."""
import logging
import os
from typing import Iterator

import pytest

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
