"""`messages`: the published bodies. Each id is stable across retries and names what the message is
about, so a consumer drops a copy by id; the `fleet` message is level-triggered, one per region."""
from __future__ import annotations

from ens_autoscaler.core.messages import TAG_FLEET, TAG_READY, devices_message, fleet_messages
from ens_autoscaler.core.orders import Listed, OrderRecord, ServiceRef

HZ, SH = "cn-hangzhou-telecom", "cn-shanghai-cmcc"


def device(id_: str, region: str = HZ, status: str = "Running") -> Listed:
    return Listed(id_, region, status, {"IP": "10.0.0.1", "ISP": "telecom", "Server": "ens-nc1"})


def test_a_fleet_message_per_region_counts_running_failed_and_on_the_way() -> None:
    listed = [device("b-3", status="Pending"), device("b-1"), device("b-2", status="CREATE_FAILED"), device("s-1", SH)]
    hz, sh = fleet_messages(listed, [HZ, SH], 1.0)
    assert (hz["type"], hz["region"], sh["region"]) == (TAG_FLEET, HZ, SH)
    assert (hz["running"], hz["failed"], hz["onTheWay"]) == (1, 1, 1)
    assert [d["id"] for d in hz["devices"]] == ["b-1", "b-2", "b-3"]  # by id, whatever order ENS listed
    assert (sh["running"], sh["failed"], sh["onTheWay"], len(sh["devices"])) == (1, 0, 0, 1)


def test_a_region_without_devices_still_gets_its_message_so_a_consumer_empties_it() -> None:
    (empty,) = fleet_messages([], [HZ], 1.0)
    assert (empty["region"], empty["devices"], empty["running"]) == (HZ, [], 0)


def test_a_fleet_message_id_names_the_content_not_the_time() -> None:
    (first,) = fleet_messages([device("b-1")], [HZ], 1.0)
    (again,) = fleet_messages([device("b-1")], [HZ], 99.0)
    (changed,) = fleet_messages([device("b-1", status="Stopped")], [HZ], 99.0)
    assert first["id"] == again["id"] != changed["id"]
    assert first["id"].startswith(f"fleet:{HZ}:")


def test_a_devices_message_id_names_the_order_and_the_devices_in_any_order() -> None:
    order = OrderRecord.intent("inv-1", [{"regionCode": HZ, "count": 2}], [], 0.0, 300.0, 60.0, {"id": "inv-1"},
                               "identity", {}, ServiceRef("app-1", "service-1"), None)
    one, body = devices_message(order, TAG_READY, [{"id": "b-2"}, {"id": "b-1"}], 5.0)
    two, _ = devices_message(order, TAG_READY, [{"id": "b-1"}, {"id": "b-2"}], 9.0)
    assert one == two and one.startswith("inv-1:devices-ready:")
    assert [d["id"] for d in body["devices"]] == ["b-1", "b-2"]
