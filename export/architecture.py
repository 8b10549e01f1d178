"""The VGG layer plan: which layers exist, what they are called, and where to cut the net.

Everything downstream (the torch reference, both ONNX graphs, the manifest and the runtime's
loss wiring) agrees on layer names through this module, so a name typo is caught once, here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import ExportError

LayerKind = Literal["conv", "relu", "pool"]

#: Convolutions per block. VGG-16 is configuration D, VGG-19 configuration E (Simonyan & Zisserman).
BLOCK_CONVS: dict[str, tuple[int, ...]] = {
    "vgg16": (2, 2, 3, 3, 3),
    "vgg19": (2, 2, 4, 4, 4),
}
BLOCK_CHANNELS = (64, 128, 256, 512, 512)

#: The taps of Gatys et al.: style on relu1_1 … relu5_1, content on relu4_2.
DEFAULT_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")

POOLINGS = ("max", "avg")


@dataclass(frozen=True)
class Layer:
    """One step of the feature extractor. ``conv_index`` counts convolutions from 0."""

    kind: LayerKind
    name: str
    block: int
    index: int  # position inside the block, from 1 (0 for pools)
    conv_index: int = -1
    in_channels: int = 0
    out_channels: int = 0


def full_plan(arch: str) -> list[Layer]:
    """Every layer of the convolutional base of ``arch``, in order, ending with pool5."""
    if arch not in BLOCK_CONVS:
        raise ExportError(f"unknown architecture {arch!r} (expected one of {', '.join(BLOCK_CONVS)})")
    layers: list[Layer] = []
    conv_index = 0
    in_ch = 3
    for b, (n_convs, ch) in enumerate(zip(BLOCK_CONVS[arch], BLOCK_CHANNELS, strict=True), start=1):
        for n in range(1, n_convs + 1):
            layers.append(Layer("conv", f"conv{b}_{n}", b, n, conv_index, in_ch, ch))
            layers.append(Layer("relu", f"relu{b}_{n}", b, n, conv_index, ch, ch))
            conv_index += 1
            in_ch = ch
        layers.append(Layer("pool", f"pool{b}", b, 0, -1, ch, ch))
    return layers


def tappable_names(arch: str) -> list[str]:
    """Layer names a user may ask for: every ReLU output and every pool output."""
    return [layer.name for layer in full_plan(arch) if layer.kind in ("relu", "pool")]


def parse_layers(spec: str | list[str] | tuple[str, ...] | None, arch: str) -> tuple[str, ...]:
    """Validate requested tap names and return them in network order, without duplicates."""
    if spec is None:
        names = list(DEFAULT_LAYERS)
    elif isinstance(spec, str):
        names = [s.strip() for s in spec.split(",") if s.strip()]
    else:
        names = list(spec)
    if not names:
        raise ExportError("no layers requested (give e.g. --layers relu1_1,relu4_2)")
    known = tappable_names(arch)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ExportError(f"unknown layer name {unknown[0]!r} for {arch} (known: relu1_1 … {known[-2]}, pool1 … pool5)")
    order = {n: i for i, n in enumerate(known)}
    return tuple(sorted(set(names), key=order.__getitem__))


def truncated_plan(arch: str, taps: tuple[str, ...]) -> list[Layer]:
    """The layers up to and including the deepest tap: nothing past it is ever computed."""
    plan = full_plan(arch)
    last = max(i for i, layer in enumerate(plan) if layer.name in taps)
    return plan[: last + 1]


@dataclass(frozen=True)
class SavedTensor:
    """A feature-graph output that only exists for the gradient graph's sake."""

    name: str
    layer: str  # the layer on whose output grid it lies
    kind: str  # "mask": bool, a ReLU's (output > 0) or a max pool's route (see ``route_name``)


def mask_name(layer: str) -> str:
    return f"saved_mask_{layer}"


def route_name(pool: str) -> str:
    """A max pool's route: on its input's grid, True where the pool's gradient goes (each window's
    first maximum in raster order, as torch and ONNX pick it) and that maximum is positive."""
    return f"saved_route_{pool}"


def folded_relu(plan: list[Layer], index: int, taps: tuple[str, ...], pooling: str) -> bool:
    """Whether the ReLU at ``plan[index]`` needs no mask: it feeds a max pool whose route is its backward.

    The pool's gradient reaches only each window's argmax, whose ReLU output is the pool's
    output, so routing only where that output is positive is exactly the ReLU's backward, ties
    included. A tapped ReLU keeps its own mask: its upstream gradient reaches every position.
    """
    layer = plan[index]
    return (
        pooling == "max"
        and layer.kind == "relu"
        and layer.name not in taps
        and index + 1 < len(plan)
        and plan[index + 1].kind == "pool"
    )


def saved_tensors(plan: list[Layer], taps: tuple[str, ...], pooling: str) -> list[SavedTensor]:
    """The masks and routes the feature graph returns beside its taps, in plan order."""
    saved: list[SavedTensor] = []
    for i, layer in enumerate(plan):
        if layer.kind == "relu" and layer.name not in taps and not folded_relu(plan, i, taps, pooling):
            saved.append(SavedTensor(mask_name(layer.name), layer.name, "mask"))
        elif layer.kind == "pool" and pooling == "max":
            saved.append(SavedTensor(route_name(layer.name), plan[i - 1].name, "mask"))
    return saved


def output_shape(plan: list[Layer], name: str, height: int, width: int) -> tuple[int, int, int, int]:
    """[1, C, h, w] of layer ``name``'s output for an image of height × width (pools floor)."""
    for layer in plan:
        if layer.kind == "pool":
            height, width = height // 2, width // 2
        if layer.name == name:
            return 1, layer.out_channels, height, width
    raise KeyError(name)
