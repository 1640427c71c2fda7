"""The curated public API resolves every name it lists."""
from __future__ import annotations

import pytest

import tokengraft


@pytest.mark.parametrize("name", tokengraft.__all__)
def test_every_exported_name_is_its_stages_own_object(name):
    """``tokengraft.NAME`` is the very object the stage defines (not a copy, not a module)."""
    import importlib
    import inspect

    obj = getattr(tokengraft, name)
    assert obj is getattr(importlib.import_module(tokengraft._EXPORTS[name]), name)
    assert not inspect.ismodule(obj) and (inspect.isclass(obj) or inspect.isfunction(obj))
    assert obj.__module__.startswith("tokengraft.") and obj.__name__ == name


def test_the_public_api_covers_each_stage():
    assert {"load_model", "byte_vocab", "train_tokenizer", "transplant_model", "bits_per_byte", "HealOptions",
            "TokengraftError"} <= set(tokengraft.__all__)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        tokengraft.no_such_thing  # noqa: B018


def test_no_export_is_shadowed_by_a_subpackage():
    # importing tokengraft.<stage> sets the package attribute to the module, so an exported
    # function with a stage's name would change meaning with import order
    import pkgutil

    stages = {m.name for m in pkgutil.iter_modules(tokengraft.__path__)}
    assert stages & set(tokengraft.__all__) == set()
    assert {"transplant", "heal", "measure"} <= stages
