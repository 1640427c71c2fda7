"""The curated public API resolves every name it lists."""
from __future__ import annotations

import pytest

import tokengraft


@pytest.mark.parametrize("name", tokengraft.__all__)
def test_every_exported_name_resolves(name):
    assert getattr(tokengraft, name) is not None


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        tokengraft.no_such_thing  # noqa: B018
