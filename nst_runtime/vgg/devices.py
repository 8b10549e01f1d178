"""Which devices a run evaluates on: each device name's precisions, and what ``auto`` means here.

``auto`` is CUDA where onnxruntime and torch can really use it. On a CPU it is MLAS's fp32
(``cpu``) unless this machine's calibration (``nst estimate``, the GIMP dialog's estimate
session: ``engine.timing``) measured OpenVINO's bf16 schedule (``openvino``) faster than MLAS
by at least ``AUTO_MARGIN``; the calibration stores that choice here, keyed by the CPU model,
its flags, the core count and the runtime's versions, and a key that changes (another CPU, a new
onnxruntime) falls back to ``cpu`` until it is measured again. bf16 is never chosen without AMX
(``amx_bf16``): there it lost to MLAS (docs/benchmarks.md §9). Where OpenVINO lists an Intel GPU,
the calibration measures ``openvino-gpu`` too, and ``auto`` takes it by the same rule.
"""

from __future__ import annotations

import contextlib
import json
import platform
from importlib import metadata
from pathlib import Path

from .sessions import (
    OPENVINO_GPU,
    cpu_flags,
    cpu_has_amx,
    cuda_usable,
    openvino_available,
    openvino_precision,
    physical_cores,
)

CHOICE_FILE = "device-choice.json"
#: ``auto`` takes OpenVINO only where its run was measured at most this fraction of MLAS's time:
#: a path that is not clearly faster is not worth a second set of sessions (and their start-up).
AUTO_MARGIN = 0.9
#: The CPU features that decide the choice; the key names them, so a CPU with other ones measures anew.
KEY_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")


def precisions(device: str) -> tuple[str, str | None]:
    """The devices a run asked on ``device`` evaluates with: (its fp32 device, a faster lower-precision
    one or None). ``openvino`` on a CPU with AMX is MLAS's fp32 and OpenVINO's bf16, each where the
    schedule says (``planning.schedule.Scale.exact_steps``): bf16 alone ended the standard job
    6.6 % above fp32's objective (docs/benchmarks.md §9). ``auto`` is what ``resolve`` says; every
    other device is one precision."""
    device = resolve(device)
    if device == "openvino" and openvino_precision(device) == "bf16":
        return "cpu", "openvino-bf16"
    return device, None


def resolve(device: str, path: Path | None = None) -> str:
    """``auto`` as this machine's stored choice says: "openvino" where it was measured faster and the
    CPU has AMX, "openvino-gpu" where that was and OpenVINO still lists the GPU, else "auto" (CUDA
    where usable, MLAS otherwise); any other device as it is."""
    if device != "auto":
        return device
    choice = stored_choice(path)
    usable = (choice == "openvino" and cpu_has_amx()) or (choice == OPENVINO_GPU and openvino_available("GPU"))
    if usable and not cuda_usable():  # CUDA asked last: on a machine with an NVIDIA driver that check imports torch
        return choice
    return device


def choose(cpu_seconds: float, openvino_seconds: float | None, amx: bool, gpu_seconds: float | None = None) -> str:
    """The fastest measured path for ``auto`` where there is no CUDA: "openvino" (bf16) only with AMX,
    "openvino-gpu" only where it was measured, each only with a time within AUTO_MARGIN of MLAS's;
    else "cpu" (never a path that may be slower)."""
    if not cpu_seconds > 0:
        return "cpu"
    candidates = {OPENVINO_GPU: gpu_seconds, **({"openvino": openvino_seconds} if amx else {})}
    timed = {d: t for d, t in candidates.items() if t is not None and t > 0}  # NaN fails t > 0 as well
    best = min(timed, key=timed.__getitem__, default=None)
    return best if best is not None and timed[best] <= AUTO_MARGIN * cpu_seconds else "cpu"


def _version(name: str) -> str:
    with contextlib.suppress(metadata.PackageNotFoundError):
        return metadata.version(name)
    return "none"


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what the platform says."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_key() -> str:
    """What a stored choice holds for: the CPU, its bf16-relevant flags, the cores and the versions."""
    from nst_export.manifest import GRAPH_FORMAT

    flags = cpu_flags()
    ort_version = _version("onnxruntime-gpu")
    if ort_version == "none":
        ort_version = _version("onnxruntime")
    parts = [
        cpu_model(),
        ",".join(f for f in KEY_FLAGS if f in flags) or "no flags",
        f"{physical_cores()} cores",
        f"nst {_version('nst')}",
        f"onnxruntime {ort_version}",
        f"openvino-ep {_version('onnxruntime-ep-openvino')}",
        GRAPH_FORMAT,
    ]
    return " | ".join(parts)


def choice_path() -> Path:
    from nst_export.paths import cache_root

    return cache_root() / CHOICE_FILE


def read_choices(path: Path | None = None) -> dict:
    """Every stored choice, by machine key ({} where there is none or the file is unreadable)."""
    try:
        data = json.loads((path or choice_path()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def stored_choice(path: Path | None = None) -> str | None:
    """This machine's stored choice for ``auto`` ("cpu", "openvino" or "openvino-gpu"), or None where none is stored."""
    record = read_choices(path).get(machine_key())
    device = record.get("device") if isinstance(record, dict) else None
    return device if device in ("cpu", "openvino", OPENVINO_GPU) else None


def device_label(used: str) -> str:
    """A run's device (``StylizeResult.device``, ``Speed.device``) in words for a user, e.g.
    "openvino-bf16+cpu" → "CPU, OpenVINO bf16 with an fp32 finish"."""
    labels = {
        "cpu": "CPU",
        "cuda": "CUDA GPU",
        "openvino-f32": "CPU, OpenVINO f32",
        "openvino-bf16": "CPU, OpenVINO bf16",
        "openvino-bf16+cpu": "CPU, OpenVINO bf16 with an fp32 finish",
        OPENVINO_GPU: "Intel GPU, OpenVINO f32",
    }
    return labels.get(used, used)
