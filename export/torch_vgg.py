"""The VGG feature extractor and its hand-built vector-Jacobian product, in torch.

``FeatureNet`` is both the reference the graphs are verified against (``features``, plain
autograd) and the module exported as the feature graph (``forward``, which also returns what
the backward needs). ``GradientNet`` is the backward written out from the forward's structure,
so that onnxruntime can run it: conv backward is a convolution with the transposed, flipped
kernel; ReLU backward is a multiply by the saved mask (for the ReLU right before a max pool, on
the pool's grid: ``architecture.pooled_mask``); max-pool backward scatters into zeros at the
saved argmax indices (exact, ties included, odd sizes included).

The max pool and its backward are exported as ONNX's own MaxPool (with indices) and MaxUnpool.
torch's exporter spells ``max_pool2d(return_indices=True)`` as a second, 1×1 MaxPool over the
whole input to turn ONNX's tensor-wide indices into per-plane ones, and the scatter as a zero
fill, casts and ScatterElements: at 512×384 those cost ~0.2 s of a ~2.9 s iteration. So the
saved indices are ONNX's (flattened over N·C·H·W), and eager torch computes the same ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .architecture import Layer, SavedTensor, indices_name, mask_name, pooled_mask, saved_tensors, truncated_plan
from .weights import VGGWeights


def grad_name(tap: str) -> str:
    return f"grad_{tap}"


def fold_preprocessing(weights: VGGWeights) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewrite conv1_1 so it takes RGB in [0, 1] minus an offset, and return (weight, offset).

    ``conv(W, (P·x·s − m)/σ) == conv(W', x − m')`` with ``W' = W[:, P]·s/σ`` and
    ``m' = P⁻¹(m)/s``. Only the channel order and scale move into the weights; the offset stays an
    explicit subtraction so that zero padding pads exactly what the original network padded.
    """
    pre = weights.preprocessing
    w, _ = weights.convs[0]
    order = [2, 1, 0] if pre.channel_order == "BGR" else [0, 1, 2]  # source channel for each RGB channel
    std = torch.tensor(pre.std, dtype=torch.float64)[order]
    folded = (w.double()[:, order] * (pre.scale / std).view(1, 3, 1, 1)).float()
    offset = (torch.tensor(pre.mean, dtype=torch.float64)[order] / pre.scale).float()
    return folded.contiguous(), offset.view(1, 3, 1, 1)


class FeatureNet(nn.Module):
    def __init__(self, weights: VGGWeights, taps: tuple[str, ...], pooling: str):
        super().__init__()
        self.arch = weights.arch
        self.taps = taps
        self.pooling = pooling
        self.plan: list[Layer] = truncated_plan(weights.arch, taps)
        n_convs = sum(1 for layer in self.plan if layer.kind == "conv")
        folded, offset = fold_preprocessing(weights)
        self.register_buffer("offset", offset)
        self.convs = nn.ModuleList()
        for i, (w, b) in enumerate(weights.convs[:n_convs]):
            conv = nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1)
            conv.weight.data = folded if i == 0 else w.clone()
            conv.bias.data = b.clone()
            conv.weight.requires_grad_(False)
            conv.bias.requires_grad_(False)
            self.convs.append(conv)
        self.saved: list[SavedTensor] = saved_tensors(self.plan, taps, pooling)

    @property
    def output_names(self) -> list[str]:
        return [*self.taps, *(s.name for s in self.saved)]

    def features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The taps, through plain torch ops: the autograd reference."""
        out: dict[str, torch.Tensor] = {}
        x = image - self.offset
        for layer in self.plan:
            x = self._step(layer, x)[0]
            if layer.name in self.taps:
                out[layer.name] = x
        return out

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Taps then saved tensors, in ``output_names`` order: what the feature graph returns."""
        taps: dict[str, torch.Tensor] = {}
        saved: dict[str, torch.Tensor] = {}
        x = image - self.offset
        names = {s.name for s in self.saved}
        for layer in self.plan:
            x, indices = self._step(layer, x, with_indices=True)
            if layer.name in self.taps:
                taps[layer.name] = x
            if mask_name(layer.name) in names:
                saved[mask_name(layer.name)] = x > 0
            if indices is not None:
                saved[indices_name(layer.name)] = indices
        return (*(taps[t] for t in self.taps), *(saved[s.name] for s in self.saved))

    def _step(self, layer: Layer, x: torch.Tensor, with_indices: bool = False):
        if layer.kind == "conv":
            return self.convs[layer.conv_index](x), None
        if layer.kind == "relu":
            return F.relu(x), None
        if self.pooling == "avg":
            return F.avg_pool2d(x, 2, 2), None
        if with_indices:
            return max_pool_with_indices(x)
        return F.max_pool2d(x, 2, 2), None


_POOL = {"kernel_shape": [2, 2], "strides": [2, 2]}


def max_pool_with_indices(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """2×2 max pool and the argmax of each window as an index into the flattened input."""
    if torch.onnx.is_in_onnx_export():
        n, c, h, w = x.shape
        shape = (n, c, h // 2, w // 2)
        y, indices = torch.onnx.ops.symbolic_multi_out(
            "MaxPool", (x,), _POOL, dtypes=(x.dtype, torch.int64), shapes=(shape, shape)
        )
        return y, indices
    y, indices = F.max_pool2d(x, 2, 2, return_indices=True)  # per-plane indices
    planes = torch.arange(x.shape[0] * x.shape[1], device=x.device).view(x.shape[0], x.shape[1], 1, 1)
    return y, indices + planes * (x.shape[2] * x.shape[3])


def max_unpool(g: torch.Tensor, indices: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``g`` scattered into zeros of ``like``'s shape at ``max_pool_with_indices``' indices."""
    if torch.onnx.is_in_onnx_export():
        shape = torch.onnx.ops.symbolic("Shape", (like,), dtype=torch.int64, shape=(4,))
        return torch.onnx.ops.symbolic("MaxUnpool", (g, indices, shape), _POOL, dtype=g.dtype, shape=like.shape)
    zeros = torch.zeros(like.numel(), dtype=g.dtype, device=g.device)
    return zeros.scatter(0, indices.flatten(), g.flatten()).view(like.shape)


class GradientNet(nn.Module):
    """d(Σ_tap <grad_tap, tap>)/d image, from the saved tensors. Inputs in ``input_names`` order."""

    def __init__(self, net: FeatureNet):
        super().__init__()
        self.plan = net.plan
        self.taps = net.taps
        self.pooling = net.pooling
        self.saved = list(net.saved)
        self.kernels = nn.ParameterList(
            nn.Parameter(c.weight.detach().transpose(0, 1).flip(2, 3).contiguous(), requires_grad=False)
            for c in net.convs
        )
        # Mask sources: a tapped ReLU is its own mask (feature > 0); others have a saved bool mask.
        self.saved_inputs = [t for t in self.taps if self._is_relu(t)] + [s.name for s in self.saved]

    def _is_relu(self, name: str) -> bool:
        return any(layer.name == name and layer.kind == "relu" for layer in self.plan)

    @property
    def input_names(self) -> list[str]:
        return [*self.saved_inputs, *(grad_name(t) for t in self.taps)]

    def layer_of(self, input_name: str) -> str:
        """The layer whose output shape an input has."""
        for s in self.saved:
            if s.name == input_name:
                return s.layer
        return input_name.removeprefix("grad_")

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        named = dict(zip(self.input_names, inputs, strict=True))
        g: torch.Tensor | None = None
        plan = self.plan
        for i in range(len(plan) - 1, -1, -1):
            layer = plan[i]
            if layer.name in self.taps:
                upstream = named[grad_name(layer.name)]
                g = upstream if g is None else g + upstream
            if g is None:
                continue
            if layer.kind == "relu":
                if not pooled_mask(plan, i, self.taps, self.pooling):  # else masked on the pool's grid
                    g = g * self._mask(layer.name, named).to(g.dtype)  # onnxruntime's Where is 2× slower
            elif layer.kind == "conv":
                g = F.conv2d(g, self.kernels[layer.conv_index], padding=1)
            else:
                if pooled_mask(plan, i - 1, self.taps, self.pooling):
                    g = g * named[mask_name(layer.name)].to(g.dtype)
                g = self._pool_backward(g, self._pool_input_like(i, named), named.get(indices_name(layer.name)))
        assert g is not None
        return g

    def _mask(self, relu: str, named: dict[str, torch.Tensor]) -> torch.Tensor:
        return named[relu] > 0 if relu in self.taps else named[mask_name(relu)]

    def _pool_input_like(self, index: int, named: dict[str, torch.Tensor]) -> torch.Tensor:
        """An input with the shape of pool ``plan[index]``'s input, for the scatter's size: the ReLU
        right before it, or (its mask lying on the pool's grid) the block's first ReLU, whose
        channels and grid every ReLU of a VGG block shares."""
        relu = self.plan[index - 1].name
        if pooled_mask(self.plan, index - 1, self.taps, self.pooling):
            relu = f"relu{self.plan[index].block}_1"
        return named[relu] if relu in self.taps else named[mask_name(relu)]

    def _pool_backward(self, g: torch.Tensor, like: torch.Tensor, indices: torch.Tensor | None) -> torch.Tensor:
        if indices is not None:
            return max_unpool(g, indices, like)
        up = F.interpolate(g * 0.25, scale_factor=2.0, mode="nearest")
        return F.pad(up, (0, like.shape[3] - up.shape[3], 0, like.shape[2] - up.shape[2]))
