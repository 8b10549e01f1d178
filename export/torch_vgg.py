"""The VGG feature extractor and its hand-built vector-Jacobian product, in torch.

``FeatureNet`` is both the reference the graphs are verified against (``features``, plain
autograd) and the module exported as the feature graph (``forward``, which also returns what
the backward needs). ``GradientNet`` is the backward written out from the forward's structure,
so that onnxruntime can run it: conv backward is a convolution with the transposed, flipped
kernel; ReLU backward is a multiply by the saved mask (none for the ReLU right before a max pool:
``architecture.folded_relu``); max-pool backward puts each window's gradient on its saved route
(exact, ties included, odd sizes included).

Every op is one that each onnxruntime provider runs natively, OpenVINO's included (issue 23): a
max pool saves no indices but a bool *route* on its input's grid (each window's first maximum,
from four strided slices of the input compared with the pooled output), and its backward is a
nearest 2× upsampling times that route, so neither MaxPool's index output (a slow reference
kernel in OpenVINO) nor MaxUnpool (none there at all) appears. Eager torch computes the same route.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .architecture import Layer, SavedTensor, folded_relu, mask_name, route_name, saved_tensors, truncated_plan
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
            x, route = self._step(layer, x, with_route=True)
            if layer.name in self.taps:
                taps[layer.name] = x
            if mask_name(layer.name) in names:
                saved[mask_name(layer.name)] = x > 0
            if route is not None:
                saved[route_name(layer.name)] = route
        return (*(taps[t] for t in self.taps), *(saved[s.name] for s in self.saved))

    def _step(self, layer: Layer, x: torch.Tensor, with_route: bool = False):
        if layer.kind == "conv":
            return self.convs[layer.conv_index](x), None
        if layer.kind == "relu":
            return F.relu(x), None
        if self.pooling == "avg":
            return F.avg_pool2d(x, 2, 2), None
        if with_route:
            return max_pool_with_route(x)
        return F.max_pool2d(x, 2, 2), None


def max_pool_with_route(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """2×2 max pool, and its route (``architecture.route_name``): a bool mask of ``x``'s shape.

    A window's four values are strided slices of ``x`` (an odd last row or column is in none);
    the first one equal to the maximum, in raster order, takes the gradient, as in torch and in
    ONNX's MaxPool indices. The pool's output is bitwise one of them, so the comparisons are exact.
    """
    y = F.max_pool2d(x, 2, 2)
    top, bottom = x[:, :, 0:-1:2], x[:, :, 1::2]
    corners = (top[..., 0:-1:2], top[..., 1::2], bottom[..., 0:-1:2], bottom[..., 1::2])
    hits = [c == y for c in corners[:3]]
    taken = ~(y > 0)  # a window whose maximum is 0 passes nothing back through its ReLU
    parts = []
    for hit in hits:
        parts.append(hit & ~taken)
        taken = taken | hit
    parts.append(~taken)
    rows = [torch.stack(parts[i : i + 2], dim=-1).flatten(-2) for i in (0, 2)]  # [N, C, h, 2w] each
    route = torch.stack(rows, dim=3).flatten(2, 3)  # [N, C, 2h, 2w]
    return y, _pad_to(route, x)


def _pad_to(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``t`` padded with zeros at the bottom and right to ``like``'s height and width (odd sizes)."""
    return F.pad(t, (0, like.shape[3] - t.shape[3], 0, like.shape[2] - t.shape[2]))


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
                if not folded_relu(plan, i, self.taps, self.pooling):  # else the pool's route masked it
                    g = g * self._mask(layer.name, named).to(g.dtype)  # onnxruntime's Where is 2× slower
            elif layer.kind == "conv":
                g = F.conv2d(g, self.kernels[layer.conv_index], padding=1)
            else:
                g = self._pool_backward(i, g, named)
        assert g is not None
        return g

    def _mask(self, relu: str, named: dict[str, torch.Tensor]) -> torch.Tensor:
        return named[relu] > 0 if relu in self.taps else named[mask_name(relu)]

    def _pool_backward(self, index: int, g: torch.Tensor, named: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pool ``plan[index]``'s backward: each window's gradient on its route (max), or a quarter on
        each of its four pixels (avg); nothing on an odd last row or column."""
        up = F.interpolate(g, scale_factor=2.0, mode="nearest")
        if self.pooling == "max":
            route = named[route_name(self.plan[index].name)]
            return _pad_to(up, route) * route.to(g.dtype)
        relu = self.plan[index - 1].name  # its mask is saved full-size: avg pooling folds none
        return _pad_to(up * 0.25, named[relu] if relu in self.taps else named[mask_name(relu)])
