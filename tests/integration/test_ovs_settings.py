"""ovs-vswitchd settings the labs change for their run are put back as they found them."""

from __future__ import annotations

import os
import shutil

import pytest

from labs.peering_net import max_revalidator

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ovs-vsctl") is None,
                                reason="needs root and Open vSwitch")


def test_max_revalidator_is_set_and_restored_whether_or_not_it_was_there():
    original = max_revalidator("100")
    try:
        assert max_revalidator("250") == "100"
        assert max_revalidator(None) == "250"
        assert max_revalidator(None) is None        # nothing set: nothing to restore
    finally:
        max_revalidator(original)
