"""Ctrl-C and SIGTERM during a sweep: stop Tune resumably, and bound the wait for the store."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from runner import _ray_private as ray_private
from runner.driver.writer import StoreWriter

__all__ = ["Interrupts"]

_STOP_SIGNALS: dict[int, str] = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class Interrupts:
    """Ctrl-C and SIGTERM (what SLURM, Kubernetes and `kill` send), over the whole drive.

    The first one ends Tune's loop the way Tune's own handler does, so trials that were
    running stay resumable from their checkpoints, and bounds the wait for the store at the
    end to a few seconds (writes it has not taken by then stay in the spill file). Before
    Tune's loop runs it aborts at once. A second one aborts Tune's loop, or, once the loop
    has ended, stops waiting for the store.
    """

    def __init__(self, writer: StoreWriter) -> None:
        self.writer = writer
        self.by: str | None = None  # what interrupted: "Ctrl-C" or "SIGTERM"
        self.count = 0
        self.tune_ended = False

    def handler(self, signum: int, frame: Any) -> None:
        self.count += 1
        self.by = self.by or _STOP_SIGNALS.get(signum, f"signal {signum}")
        if self.count > 1:
            self.writer.abandon()
            if not self.tune_ended:
                raise KeyboardInterrupt
            return
        self.writer.hurry()
        if self.tune_ended:
            return
        if not ray_private.tune_listens():  # Tune's loop has not started: nothing to save
            raise KeyboardInterrupt
        # os.write, not print: a handler that prints while the main thread prints fails
        note = f"\nstopping: saving the sweep's state to resume later ({self.by} again to abort)\n"
        os.write(2, note.encode())
        ray_private.interrupt_tune()  # Tune: save the experiment state and return

    def take_back(self) -> None:
        """Handle the signals again: ray.init sets a SIGTERM handler of its own (one that
        exits at once, taking the held writes' drain with it)."""
        if threading.current_thread() is threading.main_thread():
            for sig in _STOP_SIGNALS:
                signal.signal(sig, self.handler)

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only
            return
        previous = {sig: signal.getsignal(sig) for sig in _STOP_SIGNALS}
        self.take_back()
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
