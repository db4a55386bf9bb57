"""runner.collector: the garbage collector is off while a block imports, as it was after it,
and a process's objects are frozen once, at the end of its first such block."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.helpers.paths import REPO


def _run(code: str) -> str:
    """`code` in a fresh interpreter (freezing is once per process), its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_off_during_the_block_on_after_and_frozen_once() -> None:
    out = _run(
        """
        import gc
        from runner import collector

        with collector.imports():
            during = gc.isenabled()
            import json, decimal  # noqa: F401
        first = gc.get_freeze_count()
        garbage = []
        garbage.append(garbage)  # a cycle made between the blocks
        del garbage
        with collector.imports():
            pass
        print(during, gc.isenabled(), first > 0, gc.get_freeze_count() == first)
        """
    )
    assert out == "False True True True"  # the second block froze nothing more


def test_a_collector_turned_off_stays_off_and_an_error_still_restores() -> None:
    out = _run(
        """
        import gc
        from runner import collector

        gc.disable()
        with collector.imports():
            pass
        off = gc.isenabled()
        gc.enable()
        try:
            with collector.imports():
                raise ImportError("no such module")
        except ImportError:
            pass
        print(off, gc.isenabled())
        """
    )
    assert out == "False True"


def test_a_trainable_is_imported_with_the_collector_off() -> None:
    out = _run(
        """
        import gc, sys
        from runner.spec import resolve_trainable

        seen = []  # the collector's state when the import looks for the module

        class Finder:
            def find_spec(self, name, path=None, target=None):
                if name == "probe_trainable":
                    seen.append(gc.isenabled())
                return None

        sys.meta_path.insert(0, Finder())
        try:
            resolve_trainable("probe_trainable:train")
        except Exception as exc:
            print(type(exc).__name__, seen, gc.isenabled())
        """
    )
    assert out == "SpecError [False] True"
