"""The spec's trainable is checked from its source, without importing it in the driver: the
module must be found, parse, find its top-level imports and bind the name."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from runner.errors import SpecError
from runner.spec import load_spec, locate_trainable


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Write a module named `name` with `source` on a fresh sys.path entry; return its name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    written: list[str] = []

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        written.append(name)
        return name

    yield write
    for name in written:
        sys.modules.pop(name, None)


def test_a_function_is_found_without_importing_its_module(module) -> None:  # type: ignore[no-untyped-def]
    name = module(
        "heavy_trainable_a",
        """
        import json  # a package that is installed
        raise RuntimeError("importing this module is what the check must not do")

        def train(config):
            pass
        """,
    )
    assert locate_trainable(f"{name}:train") == "function"
    assert name not in sys.modules


def test_the_shipped_trainable_leaves_torch_to_the_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: t\ntrainable: experiments.train:train\nstop: {epochs: 1}\n")
    # Other tests import the module; forget it here, so the check has something to keep out.
    monkeypatch.delitem(sys.modules, "experiments.train", raising=False)
    load_spec(spec)
    assert "experiments.train" not in sys.modules


def test_a_class_is_told_from_a_function(module) -> None:  # type: ignore[no-untyped-def]
    name = module("class_trainable_b", "class Model:\n    pass\n")
    assert locate_trainable(f"{name}:Model") == "class"


@pytest.mark.parametrize(
    "binding",
    [
        "train = lambda config: None",
        "from json import dumps as train",
        "if True:\n    def train(config):\n        pass",
        "try:\n    from json import loads as train\nexcept ImportError:\n    train = None",
    ],
)
def test_other_bindings_are_imported_to_judge(module, binding: str) -> None:  # type: ignore[no-untyped-def]
    name = module(f"bound_trainable_{abs(hash(binding))}", binding + "\n")
    assert locate_trainable(f"{name}:train") in ("function", "other")


def test_a_missing_dependency_is_refused(module) -> None:  # type: ignore[no-untyped-def]
    name = module(
        "needs_missing_dep", "import no_such_package_xyz\n\ndef train(config):\n    pass\n"
    )
    with pytest.raises(SpecError, match="No module named 'no_such_package_xyz'"):
        locate_trainable(f"{name}:train")


def test_an_optional_import_is_the_modules_business(module) -> None:  # type: ignore[no-untyped-def]
    name = module(
        "optional_dep",
        "try:\n    import no_such_package_xyz\nexcept ImportError:\n    pass\n\n"
        "def train(config):\n    pass\n",
    )
    assert locate_trainable(f"{name}:train") == "function"


def test_a_syntax_error_is_refused(module) -> None:  # type: ignore[no-untyped-def]
    name = module("broken_syntax", "def train(config:\n")
    with pytest.raises(SpecError, match="does not import \\(SyntaxError"):
        locate_trainable(f"{name}:train")


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("no_such_module_xyz:train", "does not import"),
        ("no_such_pkg_xyz.sub:train", "No module named 'no_such_pkg_xyz'"),
        ("tests.trainables:no_such_fn", "has no function 'no_such_fn'"),
    ],
)
def test_missing_modules_and_names_are_refused(ref: str, words: str) -> None:
    with pytest.raises(SpecError, match=words):
        locate_trainable(ref)


def test_a_name_bound_by_import_that_is_not_callable_is_refused(module) -> None:  # type: ignore[no-untyped-def]
    name = module("binds_a_constant", "from math import pi as train\n")
    with pytest.raises(SpecError, match="has no function 'train'"):
        locate_trainable(f"{name}:train")
