"""CloudMonitor's dimensions in every spelling (`sources/cms_dimensions.py`): Java maps, JSON, arrays, null."""
from __future__ import annotations

import pytest

from ens_autoscaler.core.errors import InputError
from ens_autoscaler.sources import cms_dimensions


@pytest.mark.parametrize("text, expected", [
    ("{}", {}),
    ("{ }", {}),
    ("{userId=12**, instanceId=i-12**}", {"userId": "12**", "instanceId": "i-12**"}),
    ("{userId=12****), instanceId=i-12****}", {"userId": "12****)", "instanceId": "i-12****"}),
    ("{apiStageName=RELEASE, apiUid=c6fa, region=cn-shenzhen, userId=1273}",
     {"apiStageName": "RELEASE", "apiUid": "c6fa", "region": "cn-shenzhen", "userId": "1273"}),
    ("{tags=a,b, ensRegionId=cn-hangzhou-telecom}", {"tags": "a,b", "ensRegionId": "cn-hangzhou-telecom"}),
    ("{expr=a=b, k=v}", {"expr": "a=b", "k": "v"}),
    ("{instanceId=null, userId=}", {"instanceId": None, "userId": None}),
    ("  {k=v}  ", {"k": "v"}),
])
def test_java_map(text, expected):
    assert cms_dimensions.parse_java_map(text, "dims") == expected


@pytest.mark.parametrize("text", ["k=v", "{k=v", "k=v}", "{k}", "{=v}", "{k=v, k=w}", "[k=v]"])
def test_java_map_rejects(text):
    with pytest.raises(InputError, match="dims"):
        cms_dimensions.parse_java_map(text, "dims")


def test_java_map_entry_limit():
    many = "{" + ", ".join(f"k{i}=v" for i in range(65)) + "}"
    with pytest.raises(InputError, match="more than 64 entries"):
        cms_dimensions.parse_java_map(many, "dims")


@pytest.mark.parametrize("value, expected", [
    (None, {}),
    ("null", {}),
    ("", {}),
    ("{userId=1, instanceId=i-1}", {"userId": "1", "instanceId": "i-1"}),
    ('{"userId": "1", "instanceId": "i-1"}', {"userId": "1", "instanceId": "i-1"}),
    ('[{"userId":"12345","instanceId":"i-12345"}]', {"userId": "12345", "instanceId": "i-12345"}),
    ({"userId": 1, "instanceId": "i-1", "x": None}, {"userId": "1", "instanceId": "i-1", "x": None}),
    ([{"a": "1"}, {"b": "2"}], {"a": "1", "b": "2"}),
])
def test_dimensions_in_every_spelling(value, expected):
    assert cms_dimensions.parse_dimensions(value, "dims") == expected


@pytest.mark.parametrize("value", [5, True, ["x"], [{"a": "1"}, {"a": "2"}], {"a": {"b": 1}},
                                   {"a": [1]}, '[1, 2]', '{"a": {"b": 1}}'])
def test_dimensions_rejects(value):
    with pytest.raises(InputError, match="dims"):
        cms_dimensions.parse_dimensions(value, "dims")
