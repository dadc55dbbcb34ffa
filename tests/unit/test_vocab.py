"""core/vocab: the concepts several modules must agree on. Here, the one reading of a time zone name
that the policy's forecast.timeZone and the operator's --time-zone share."""
from __future__ import annotations

import pytest

from ens_autoscaler.core.errors import InputError
from ens_autoscaler.core.vocab import time_zone


@pytest.mark.parametrize("name", ["Asia/Shanghai", "UTC", "America/New_York"])
def test_an_iana_name_is_a_zone(name: str) -> None:
    assert time_zone(name).key == name


@pytest.mark.parametrize("case, name", [
    ("not a zone", "Mars/Olympus"),
    ("a folder of zones, not a zone", "America"),  # zoneinfo opens a directory: OSError, not NotFound
    ("a path outside the database", "../etc/passwd"),  # ValueError
    ("a name longer than a file name may be", "A" * 300),  # OSError: name too long
])
def test_anything_else_is_bad_input_naming_it(case: str, name: str) -> None:
    with pytest.raises(InputError, match="unknown time zone") as raised:
        time_zone(name)
    assert repr(name)[:40] in str(raised.value), case
