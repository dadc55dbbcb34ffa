"""The live inventory read from DescribeDeviceService: which devices count as capacity."""
from __future__ import annotations

import pytest

from ens_autoscaler.core.planner import Capacity, Inventory
from ens_autoscaler.core.policy.loading import read_policy
from ens_autoscaler.runtime.settings import PACKAGE_ROOT
from localcloud import LocalCloud

SERVICE = read_policy(PACKAGE_ROOT / "policy.yaml").service
REGION = "cn-guangzhou-unicom"
# Written out here, not imported from orders.py: a status dropped there must fail this test.
NOT_CAPACITY = ("Stopped", "Stopping", "Released", "Releasing", "Deleted", "Deleting", "Failed", "Expired",
                "CREATE_FAILED")


def seed(cloud: LocalCloud, count: int, status: str) -> None:
    cloud.seed_devices(REGION, count, status=status, isp="unicom", app_id=SERVICE.app_id,
                       service_id=SERVICE.service_id)


@pytest.mark.parametrize("status", NOT_CAPACITY)
def test_devices_that_neither_serve_nor_are_coming_are_not_capacity(status: str, cloud: LocalCloud,
                                                                    make_autoscaler) -> None:
    seed(cloud, 3, "Running")
    seed(cloud, 2, status)
    inventory = Inventory.from_listing(make_autoscaler().actuator.listing(SERVICE))
    assert inventory.available and inventory.of(REGION) == Capacity(3, 0)


def test_devices_on_their_way_are_pending_capacity(cloud: LocalCloud, make_autoscaler) -> None:
    seed(cloud, 3, "Running")
    seed(cloud, 2, "Starting")  # any status that is not one of the gone ones: on its way
    assert Inventory.from_listing(make_autoscaler().actuator.listing(SERVICE)).of(REGION) == Capacity(3, 2)
