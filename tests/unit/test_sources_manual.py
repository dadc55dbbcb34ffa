"""An operator's manual scale-out request (`sources/manual.py`)."""
from __future__ import annotations

import json

import pytest

from ens_autoscaler import sources
from tests.unit.source_events import decode_file, load, rejects


def test_manual_keys_hash_the_canonical_request():
    [profile] = decode_file("manual-profile.json")
    reordered = dict(reversed(list(load("manual-profile.json").items())))
    [again] = sources.decode(json.dumps(reordered, indent=4))
    assert profile.dedupe_key == again.dedupe_key
    assert profile.dedupe_key.startswith("manual:") and len(profile.dedupe_key) == 7 + 64
    changed = dict(reordered, reason="another reason")
    assert sources.decode(changed)[0].dedupe_key != profile.dedupe_key


COUNTS = {"action": "scale-out", "regions": {"cn-hangzhou-telecom": 2}}


@pytest.mark.parametrize("request_, fragment", [
    (dict(COUNTS, action="scale-in"), 'manual request.action must be "scale-out"'),
    (dict(COUNTS, action=1), 'manual request.action must be "scale-out"; received a JSON number'),
    (dict(COUNTS, profile="evening-peak"), 'exactly one of "regions"'),
    ({"action": "scale-out"}, 'exactly one of "regions"'),
    ({"action": "scale-out", "regions": None}, 'exactly one of "regions"'),
    (dict(COUNTS, regions={"cn-hangzhou-telecom": 0}),
     "manual request.regions.'cn-hangzhou-telecom' must be between 1 and 1000"),
    (dict(COUNTS, regions={"cn-hangzhou-telecom": 1001}), "must be between 1 and 1000"),
    (dict(COUNTS, regions={"cn-hangzhou-telecom": 2.0}), "must be an integer device count"),
    (dict(COUNTS, regions={"cn-hangzhou-telecom": "2"}), "must be an integer device count"),
    (dict(COUNTS, regions={"cn-hangzhou-telecom": True}), "must be an integer device count"),
    (dict(COUNTS, regions={"cn-hangzhou-telecom": None}), "must be an integer device count"),
    (dict(COUNTS, regions={"CN-HANGZHOU": 1}), "'CN-HANGZHOU', which is not an ENS region id"),
    (dict(COUNTS, regions={"cn-hangzhou; rm -rf /": 1}), "which is not an ENS region id"),
    (dict(COUNTS, regions={"cn-${jndi:ldap}": 1}), "which is not an ENS region id"),
    (dict(COUNTS, regions={"cn-" + "a" * 63: 1}), "which is not an ENS region id"),
    (dict(COUNTS, regions={}), "manual request.regions is empty"),
    (dict(COUNTS, regions=["cn-hangzhou-telecom"]), "manual request.regions must be an object"),
    (dict(COUNTS, regions={f"cn-r{i}": 1 for i in range(101)}), "more than 100 regions"),
    (dict(COUNTS, region="cn-hangzhou-telecom"), "unknown key 'region'"),
    (dict(COUNTS, dryRun="yes"), "manual request.dryRun must be a boolean"),
    (dict(COUNTS, dryRun=1), "manual request.dryRun must be a boolean"),
    (dict(COUNTS, id=""), "manual request.id must be 1-128 characters"),
    (dict(COUNTS, id="has space"), "manual request.id must be"),
    (dict(COUNTS, id="x" * 129), "manual request.id must be"),
    (dict(COUNTS, id=12), "manual request.id must be"),
    (dict(COUNTS, reason="r" * 257), "manual request.reason is longer than 256"),
    (dict(COUNTS, reason=5), "manual request.reason must be a string"),
    (dict(COUNTS, reason="line\nbreak"), "manual request.reason contains control characters"),
    ({"action": "scale-out", "profile": "evening peak"}, "manual request.profile must be a profile name"),
    ({"action": "scale-out", "profile": 3}, "manual request.profile must be a profile name"),
])
def test_manual_bad_requests(request_, fragment):
    rejects(request_, fragment)


def test_manual_accepts_the_edges():
    [signal] = sources.decode(dict(COUNTS, regions={"cn-hangzhou-telecom": 1000, "cn-x": 1},
                                   id="a" * 128, reason="r" * 256, dryRun=False))
    assert dict(signal.counts) == {"cn-hangzhou-telecom": 1000, "cn-x": 1}
    assert signal.dedupe_key == "manual:" + "a" * 128
