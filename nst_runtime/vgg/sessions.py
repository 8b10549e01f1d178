"""onnxruntime sessions on the device that really works.

onnxruntime-gpu lists the CUDA provider even where CUDA cannot load, so "auto" trusts only a
session that, once created, still reports the CUDA provider; everything else runs on the CPU.

"openvino-f32" and "openvino-bf16" run the graphs through OpenVINO's plugin provider (the package
onnxruntime-ep-openvino, registered into onnxruntime at first use) on its CPU device, with the
precision explicit; plain "openvino" takes bf16 where the CPU has AMX and f32 elsewhere (issue 23).
"openvino-gpu" runs them in f32 on OpenVINO's GPU device (an Intel GPU), where the plugin lists one.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path

import onnxruntime as ort

from ..errors import NSTError
from ..options import DEVICES

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
OPENVINO = "OpenVINOExecutionProvider"
OPENVINO_DEVICES = tuple(d for d in DEVICES if d.startswith("openvino"))
OPENVINO_GPU = "openvino-gpu"


def physical_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_arena_lock = threading.Lock()
_arena_registered: bool | None = None  # None: not tried yet


def _register_cpu_arena() -> bool:
    """One process-wide CPU arena that grows by what is asked, not to the next power of two.

    onnxruntime's default arena doubles its chunks, which at 1024×768 and above costs gigabytes
    of peak memory for no speed (docs/benchmarks.md §8). False where this onnxruntime cannot do it.
    """
    global _arena_registered
    with _arena_lock:
        if _arena_registered is None:  # once per process, failure included: every session asks
            try:
                config = ort.OrtArenaCfg({"arena_extend_strategy": 1})  # 1 = kSameAsRequested
                info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
                ort.create_and_register_allocator(info, config)
                _arena_registered = True
            except Exception:
                _arena_registered = False
        return _arena_registered


def session_options(threads: int | None = None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    if _register_cpu_arena():
        options.add_session_config_entry("session.use_env_allocators", "1")
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or physical_cores()
    options.inter_op_num_threads = 1
    # With dynamic shapes the precomputed memory pattern is a large block per run: more peak
    # memory and no speed (docs/benchmarks.md §8).
    options.enable_mem_pattern = False
    # Spinning threads would steal the cores torch needs for the losses between runs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def _no_nvidia_driver() -> bool:
    """True where there is certainly no NVIDIA driver (Linux without /proc/driver/nvidia)."""
    return sys.platform.startswith("linux") and not os.path.exists("/proc/driver/nvidia/version")


def cuda_usable() -> bool:
    """Cheap pre-check: both torch (which holds the tensors) and onnxruntime must see CUDA."""
    if CUDA not in ort.get_available_providers() or _no_nvidia_driver():
        return False  # decided without importing torch, which a start-up prewarm thread must not do
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


_cache: dict[tuple, tuple[ort.InferenceSession, str]] = {}
_cache_locks: dict[tuple, threading.Lock] = {}
_cache_guard = threading.Lock()


def create_session(path: Path, device: str, threads: int | None = None) -> tuple[ort.InferenceSession, str]:
    """A session for ``path`` on ``device`` (one of DEVICES); returns it and the device used
    ("cpu", "cuda", "openvino-f32" or "openvino-bf16").

    Sessions are cached per process (creating one optimises the whole graph): a prewarm thread
    can create them while the main thread is still importing torch.
    """
    key = _cache_key(path, device, threads)
    with _lock_for(key):
        if key not in _cache:
            _cache[key] = _create_session(path, device, threads)
        return _cache[key]


def seconds_to_create(path: Path, device: str, threads: int | None = None) -> float:
    """What a fresh process pays to open ``path``'s session: timed on a new session, past the
    per-process cache (a session that an earlier run in this process opened costs nothing to
    look up, and the estimate prices a run that opens its own). The new session is kept in the
    cache when it holds none yet, so measuring first and using the session after opens it once."""
    key = _cache_key(path, device, threads)
    started = time.perf_counter()
    made = _create_session(path, device, threads)
    seconds = time.perf_counter() - started
    with _lock_for(key):
        _cache.setdefault(key, made)
    return seconds


def _cache_key(path: Path, device: str, threads: int | None) -> tuple:
    return (str(path), Path(path).stat().st_mtime_ns, device, threads)


def _lock_for(key: tuple) -> threading.Lock:
    """One lock per session, so two threads asking for the same one create it once."""
    with _cache_guard:
        return _cache_locks.setdefault(key, threading.Lock())


_openvino_lock = threading.Lock()


def openvino_device(kind: str = "CPU") -> ort.OrtEpDevice:
    """OpenVINO's ``kind`` device ("CPU" or "GPU"), its plugin registered once per process; a one-line
    NSTError where the plugin is unusable or lists no such device."""
    with _openvino_lock:
        try:
            import onnxruntime_ep_openvino as plugin
        except ImportError:
            raise NSTError(
                "OpenVINO is not available: its onnxruntime plugin is not installed "
                "(pip install onnxruntime-ep-openvino; wheels exist for x86-64 Linux and Windows)"
            ) from None
        if not hasattr(ort, "get_ep_devices"):
            raise NSTError(f"OpenVINO is not available: onnxruntime {ort.__version__} cannot load plugin providers")
        if not any(d.ep_name == OPENVINO for d in ort.get_ep_devices()):
            try:
                ort.register_execution_provider_library("openvino", plugin.get_library_path())
            except Exception as exc:
                raise NSTError(f"OpenVINO is not available: {str(exc).splitlines()[0][:200]}") from None
        listed = [d for d in ort.get_ep_devices() if d.ep_name == OPENVINO]
    return pick_openvino_device(listed, kind)


def pick_openvino_device(listed: list, kind: str) -> ort.OrtEpDevice:
    """The device of ``kind`` among OpenVINO's ``listed`` ones (their ``ep_metadata["ov_device"]``
    says "CPU", "GPU", "GPU.0", "NPU"…); a one-line NSTError naming what it found where none is."""
    for d in listed:
        if d.ep_metadata.get("ov_device", "").split(".")[0] == kind:
            return d
    found = ", ".join(sorted({d.ep_metadata.get("ov_device", "?") for d in listed})) or "none"
    what = "an Intel GPU" if kind == "GPU" else f"a {kind} device"
    raise NSTError(f"OpenVINO is not available on {what}: it found none here (its devices: {found})")


def openvino_available(kind: str = "CPU") -> bool:
    """Whether OpenVINO's ``kind`` device can be used here (its plugin installed and loadable, the device listed)."""
    try:
        openvino_device(kind)
    except NSTError:
        return False
    return True


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux's /proc/cpuinfo; empty where that cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_amx() -> bool:
    """Whether the CPU has AMX bf16 tiles."""
    return "amx_bf16" in cpu_flags()


def openvino_precision(device: str, amx: bool | None = None) -> str:
    """The precision ("f32" or "bf16") of an openvino device name; plain "openvino" takes bf16 only
    with AMX: OpenVINO lists BF16 even where it only emulates it, and without AMX bf16 lost to
    MLAS fp32 (docs/benchmarks.md §9)."""
    if device == OPENVINO_GPU:
        return "f32"  # f16, the GPU plugin's default, was not measured (no Intel GPU here)
    if device != "openvino":
        return device.removeprefix("openvino-")
    return "bf16" if (cpu_has_amx() if amx is None else amx) else "f32"


def _openvino_session(path: Path, device: str, threads: int | None) -> tuple[ort.InferenceSession, str]:
    """A session whose graph runs on OpenVINO's CPU device (or its GPU one for "openvino-gpu"), with
    the precision explicit (with no hint, OpenVINO picks bf16 on a CPU that has it, f16 on a GPU)
    and the CPU's thread count through load_config (the provider ignores num_of_threads)."""
    kind = "GPU" if device == OPENVINO_GPU else "CPU"
    ep_device = openvino_device(kind)
    precision = openvino_precision(device)
    config = {"INFERENCE_PRECISION_HINT": precision}
    if kind == "CPU":
        config["INFERENCE_NUM_THREADS"] = str(threads or physical_cores())
    options = session_options(threads)
    options.add_session_config_entry("session.record_ep_graph_assignment_info", "1")  # which nodes OpenVINO took
    options.add_provider_for_devices([ep_device], {"load_config": json.dumps({kind: config})})
    try:
        session = ort.InferenceSession(str(path), options)
    except Exception as exc:
        raise NSTError(f"OpenVINO could not open {path.name}: {str(exc).splitlines()[0][:200]}") from None
    return session, OPENVINO_GPU if kind == "GPU" else f"openvino-{precision}"


def _create_session(path: Path, device: str, threads: int | None) -> tuple[ort.InferenceSession, str]:
    if device not in DEVICES:
        raise NSTError(f"unknown device {device!r} (expected {', '.join(DEVICES)})")
    if device in OPENVINO_DEVICES:
        return _openvino_session(Path(path), device, threads)
    if device != "cpu" and cuda_usable():
        if hasattr(ort, "preload_dlls"):
            with contextlib.suppress(Exception):
                ort.preload_dlls()
        options = session_options(threads)
        options.log_severity_level = 4  # a failed CUDA load is expected on many machines; we report it ourselves
        try:
            session = ort.InferenceSession(str(path), options, providers=[CUDA, CPU])
        except Exception as exc:
            if device == "cuda":
                raise NSTError(f"CUDA was requested but onnxruntime cannot use it: {exc}") from None
        else:
            if CUDA in session.get_providers():
                return session, "cuda"
    if device == "cuda":
        raise NSTError("CUDA was requested but is not usable here (no CUDA GPU, or onnxruntime/torch lack CUDA)")
    return ort.InferenceSession(str(path), session_options(threads), providers=[CPU]), "cpu"
