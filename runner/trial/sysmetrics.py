"""System load per trial: each trial samples its own process every few seconds.

A `Sampler` runs on a daemon thread in the trial's worker process and reads, every
`every` seconds:

- `sys/cpu_percent`: CPU time the process used over the interval, in percent of one core
  (100 = one core busy; 400 = four), all its threads counted;
- `sys/rss_mb`: the process's resident memory, in MiB;
- where Ray gave the trial a GPU (outside Ray: the GPUs CUDA_VISIBLE_DEVICES shows) and
  NVIDIA's `nvidia-ml-py` (module `pynvml`) is installed and finds a driver:
  `sys/gpu_util`, the utilisation of those GPUs in percent (averaged over them; it is the
  device's, so trials sharing a GPU see the same figure), and `sys/gpu_mem_mb`, the GPU
  memory this process holds in MiB, as nvidia-smi shows it; where NVML cannot see the
  process (a container's own pid namespace), PyTorch's reserved memory instead.

The step of a `sys/` point is whole seconds of trial time: seconds since the trial started,
continuing after a retry or a resume from where its checkpoint left off (Ray Tune's
`time_total_s`), so a retried trial's load goes on along the same axis instead of writing over
its first run. The samples travel to the driver inside the trial's next Ray Tune result,
under their own key (runner.protocol.SYS_KEY), apart from the trial's own points: the
sweep's `metric`, the metric check and the schedulers never see them. Sampling is switched
on by the spec (`system_metrics`, default on; `system_metrics_every`, default 2 s) and wraps
every trainable through `sampling(every)`, a mixin for Ray Tune's Trainable (a function
trainable's wrapper class takes it through Ray's `__mixins__`, see runner._ray_private).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, Self

from runner import _ray_private
from runner.protocol import DEFAULT_SYSTEM_EVERY, SYS_KEY, SYSTEM_PREFIX

__all__ = ["Sampler", "sampling"]

MIB = 2**20

log = logging.getLogger(__name__)
Point = tuple[str, int, float, float]


class _Gpus:
    """NVML handles of the GPUs a trial may use; empty without pynvml or a driver."""

    def __init__(self, ids: Sequence[str] | None) -> None:
        self.handles: list[Any] = []
        try:
            import pynvml
        except ImportError:
            return
        self._nvml = pynvml
        try:
            pynvml.nvmlInit()  # counted by NVML: each Sampler's init is matched by its close
        except pynvml.NVMLError as exc:
            log.debug("no GPU metrics: NVML did not start (%s)", exc)
            return
        self._open = True
        if ids is None:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            if visible is not None:
                ids = [part.strip() for part in visible.split(",") if part.strip()]
            else:
                try:
                    ids = [str(i) for i in range(pynvml.nvmlDeviceGetCount())]
                except pynvml.NVMLError:
                    ids = []
        for ident in ids:
            try:
                if ident.isdigit():
                    handle = pynvml.nvmlDeviceGetHandleByIndex(int(ident))
                else:
                    handle = pynvml.nvmlDeviceGetHandleByUUID(ident)
            except pynvml.NVMLError:
                break  # CUDA, too, ignores everything from the first id it cannot use
            self.handles.append(handle)

    def read(self, pid: int) -> dict[str, float]:
        if not self.handles:
            return {}
        nvml = self._nvml
        values: dict[str, float] = {}
        utils, memory, seen = [], 0, False
        for handle in self.handles:
            with contextlib.suppress(nvml.NVMLError):  # a MIG instance has no utilisation
                utils.append(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            try:
                processes = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
            except nvml.NVMLError:
                continue
            for process in processes:
                used = getattr(process, "usedGpuMemory", None)
                if process.pid == pid and used is not None:
                    memory, seen = memory + used, True
        if utils:
            values["gpu_util"] = sum(utils) / len(utils)
        if seen:
            values["gpu_mem_mb"] = memory / MIB
        else:
            reserved = _torch_reserved()
            if reserved is not None:
                values["gpu_mem_mb"] = reserved / MIB
        return values

    def close(self) -> None:
        if getattr(self, "_open", False):
            self._open = False
            with contextlib.suppress(self._nvml.NVMLError):
                self._nvml.nvmlShutdown()


def _torch_reserved() -> int | None:
    """Bytes PyTorch's allocator holds on every GPU, once this process has used CUDA."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_initialized():
            return None
        return sum(torch.cuda.memory_reserved(i) for i in range(torch.cuda.device_count()))
    except Exception:  # a broken CUDA state is the trial's to report, not the sampler's
        return None


def _rss_reader() -> Any:
    """A function returning this process's resident bytes: psutil (Ray ships it), else
    /proc/self/statm, else None where neither is there."""
    try:
        import psutil

        process = psutil.Process()
        return lambda: process.memory_info().rss
    except ImportError:
        pass
    if os.path.exists("/proc/self/statm"):
        page = os.sysconf("SC_PAGE_SIZE")

        def statm() -> int:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * page

        return statm
    return lambda: None


class Sampler:
    """Samples this process every `every` seconds on a daemon thread; `take` hands over the
    samples so far. `offset` is the trial time (seconds) at which sampling starts.

    Args:
        every: seconds between samples (at least 1: steps are whole seconds).
        offset: trial seconds already spent (a retried or resumed trial), the first step.
        gpus: GPU ids (indices or UUIDs) to sample; None: those CUDA_VISIBLE_DEVICES shows,
            or all; empty: none.
    """

    def __init__(
        self,
        every: float = DEFAULT_SYSTEM_EVERY,
        *,
        offset: float = 0.0,
        gpus: Sequence[str] | None = None,
    ) -> None:
        if every < 1:
            raise ValueError(f"every={every!r}: sample at most once a second")
        self.every = every
        self._offset = offset
        self._pid = os.getpid()
        self._rss = _rss_reader()
        self._gpus = _Gpus(gpus)
        self._points: list[Point] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._cpu_at = (self._started, _cpu_seconds())

    @property
    def has_gpu(self) -> bool:
        return bool(self._gpus.handles)

    def read(self) -> dict[str, float]:
        """One sample now: metric name (with the sys/ prefix) -> value. CPU use is over the
        time since the previous read (or since the sampler was made)."""
        now, cpu = time.monotonic(), _cpu_seconds()
        then, cpu_then = self._cpu_at
        self._cpu_at = (now, cpu)
        values: dict[str, float] = {}
        if now > then:
            values["cpu_percent"] = max(0.0, 100.0 * (cpu - cpu_then) / (now - then))
        rss = self._rss()
        if rss is not None:
            values["rss_mb"] = rss / MIB
        values.update(self._gpus.read(self._pid))
        return {SYSTEM_PREFIX + name: value for name, value in values.items()}

    def sample(self) -> None:
        """Read now and keep the sample, at the trial's current whole second."""
        step = round(self._offset + time.monotonic() - self._started)
        wall = time.time()
        points = [(name, step, value, wall) for name, value in self.read().items()]
        with self._lock:
            self._points.extend(points)

    def take(self) -> list[Point]:
        """The samples kept since the last take, oldest first."""
        with self._lock:
            points, self._points = self._points, []
        return points

    def start(self) -> Self:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sweepscope-sys", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """End the thread (samples not yet taken stay for `take`) and release NVML."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._gpus.close()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.sample()
            except Exception:  # never let the load readings end or disturb the trial
                log.debug("system metrics sample failed", exc_info=True)


def _cpu_seconds() -> float:
    return time.process_time()  # user + system, every thread of the process, to the ns


def _ray_gpus() -> list[str] | None:
    """The GPU ids Ray gave this worker (empty for a trial without GPUs); None outside Ray."""
    if "ray" not in sys.modules:
        return None
    import ray

    if not ray.is_initialized():
        return None
    return [str(i) for i in ray.get_gpu_ids()]


def sampling(every: float) -> type:
    """A mixin for a Ray Tune Trainable: samples the trial's process from its first step to
    its end and adds the samples to each result under SYS_KEY. A reused actor (a new trial
    in the same process) starts a new sampler, at the new trial's time 0."""

    class SystemLoad:
        _sys_sampler: Sampler | None = None
        _sys_broken = False  # the sampler could not start: the trial runs without it

        def step(self) -> Any:
            if self._sys_sampler is None and not self._sys_broken:
                # Trial time restored from the checkpoint by now (0 on a fresh start).
                offset = _ray_private.time_total(self)
                try:
                    self._sys_sampler = Sampler(every, offset=offset, gpus=_ray_gpus()).start()
                except Exception:
                    log.warning("system metrics are off for this trial", exc_info=True)
                    self._sys_broken = True
            result = super().step()  # type: ignore[misc]
            if self._sys_sampler is not None and isinstance(result, dict):
                points = self._sys_sampler.take()
                if points:
                    result[SYS_KEY] = points
            return result

        def reset_config(self, new_config: dict[str, Any]) -> bool:
            self._sys_end()
            return bool(super().reset_config(new_config))  # type: ignore[misc]

        def cleanup(self) -> None:
            self._sys_end()
            super().cleanup()  # type: ignore[misc]

        def _sys_end(self) -> None:
            self._sys_broken = False
            if self._sys_sampler is not None:
                self._sys_sampler.stop()
                self._sys_sampler = None

    return SystemLoad
