"""The Gatys loss and its gradient w.r.t. the taps, written out for export.

Exported and composed between the feature and gradient graphs, it gives the *fused* graph:
image + targets → loss parts and d loss / d image in one onnxruntime run, so the optimisation
loop never leaves onnxruntime. Targets and weights are inputs, so one graph serves every style,
blend and user weight:

    content = w_c · mean((F − T)²)                      on the content layer
    style   = Σ_l w_l · mean((G_l − A_l)²),  G = F Fᵀ / (h w)   on the style layers

The gradients are the closed forms: d content/dF = 2 w_c (F − T) / N and
d style_l/dF = 4 w_l (G − A) F / (C² h w) (G and A are symmetric).

``GuidedLossNet`` is the same loss with R regions per style layer (Gatys et al. 2017, §4): each
region r has a mask m_r on the layer's grid, its own target A_r and weight w_r, and its guided
Gram G_r = (F ⊙ m_r)(F ⊙ m_r)ᵀ / Σ m_r², so d style_r/dF = 4 w_r (G_r − A_r) F diag(m_r²) / (C² Σ m_r²).
Exported as the *guided* graph, it keeps masked (regional) runs on the one-graph fast path.

Products of sizes are taken in float (``_positions``): OpenVINO runs int64 as int32, and an integer
C²·h·w overflows from about 1024×512 pixels (relu1_1's 64² · h · w), which silently scaled the
shallow layers' gradients while the loss stayed right (issue 23).
"""

from __future__ import annotations

import torch
from torch import nn

CONTENT_LAYER = "relu4_2"


def loss_layers(taps: tuple[str, ...]) -> tuple[str | None, tuple[str, ...]]:
    """(content layer or None, style layers) for a tap set: content on relu4_2, style on the rest."""
    content = CONTENT_LAYER if CONTENT_LAYER in taps else None
    return content, tuple(t for t in taps if t != content)


def _positions(f: torch.Tensor) -> torch.Tensor:
    """h·w of a feature map [1, C, h, w] as a float32 scalar, never as an integer product."""
    return torch.scalar_tensor(f.shape[2], dtype=f.dtype) * torch.scalar_tensor(f.shape[3], dtype=f.dtype)


def gram_name(layer: str) -> str:
    return f"gram_{layer}"


def mask_input_name(layer: str) -> str:
    return f"mask_{layer}"


class LossNet(nn.Module):
    def __init__(self, taps: tuple[str, ...]):
        super().__init__()
        self.taps = taps
        self.content_layer, self.style_layers = loss_layers(taps)

    @property
    def input_names(self) -> list[str]:
        content = ["content_target"] if self.content_layer else []
        return [*self.taps, *content, *(gram_name(s) for s in self.style_layers), "content_weight", "style_weights"]

    @property
    def output_names(self) -> list[str]:
        return ["loss", "content_loss", "style_loss", "style_losses", *(f"grad_{t}" for t in self.taps)]

    def _content(self, feats: dict, named: dict, grads: dict) -> torch.Tensor:
        """The content part; its gradient goes into ``grads``."""
        content_weight = named["content_weight"]
        # Parts with no layers still depend on an input, so the exporter keeps them as graph outputs.
        content = content_weight * 0.0
        if self.content_layer:
            diff = feats[self.content_layer] - named["content_target"]
            content = content_weight * diff.pow(2).mean()
            scale = 2.0 / diff.shape[1] / _positions(diff)
            grads[self.content_layer] = content_weight * scale * diff
        return content

    def _content_reference(self, feats: dict, named: dict) -> torch.Tensor:
        if not self.content_layer:
            return torch.zeros(())
        return named["content_weight"] * (feats[self.content_layer] - named["content_target"]).pow(2).mean()

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        named = dict(zip(self.input_names, inputs, strict=True))
        feats = {t: named[t] for t in self.taps}
        grads: dict[str, torch.Tensor] = {}
        content = self._content(feats, named, grads)
        style = named["style_weights"].sum() * 0.0
        losses = []
        for i, layer in enumerate(self.style_layers):
            f = feats[layer]
            flat = f.reshape(f.shape[1], -1)  # a view: indexing the batch copied the tensor (Gather)
            loss, grad = self._style(i, layer, flat, _positions(f), named)
            style = style + loss
            losses.append(loss)
            grads[layer] = grad.view(f.shape)
        # Each style layer's part too: a caller can read a restricted objective's value (the detail
        # pass's shallow layers) off a full evaluation.
        per_layer = torch.stack(losses) if losses else named["style_weights"].reshape(-1)[:0]
        return (content + style, content, style, per_layer, *(grads[t] for t in self.taps))

    def _style(
        self, i: int, layer: str, flat: torch.Tensor, positions: torch.Tensor, named: dict
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One style layer's loss and its gradient w.r.t. the features ``flat`` [C, P], P = ``positions``."""
        weight = named["style_weights"][i]
        d = flat @ flat.T / positions - named[gram_name(layer)]
        channels = d.shape[0]  # static: 4/C² is a constant
        return weight * d.pow(2).mean(), weight * (4.0 / (channels * channels)) / positions * (d @ flat)

    def reference(self, feats: dict[str, torch.Tensor], named: dict[str, torch.Tensor]) -> torch.Tensor:
        """The same loss through plain autograd, for verification."""
        total = self._content_reference(feats, named)
        for i, layer in enumerate(self.style_layers):
            total = total + self._style_reference(i, layer, feats[layer].flatten(2)[0], named)
        return total

    def _style_reference(self, i: int, layer: str, flat: torch.Tensor, named: dict) -> torch.Tensor:
        g = flat @ flat.T / flat.shape[1]
        return named["style_weights"][i] * (g - named[gram_name(layer)]).pow(2).mean()


class GuidedLossNet(LossNet):
    """The loss with R masked regions per style layer: ``gram_<l>`` [R, C, C], ``mask_<l>`` [R, h, w],
    ``style_weights`` [R, L]. A region with weight 0 and an all-zero mask adds exactly nothing, so
    a caller pads layers to the same R."""

    @property
    def input_names(self) -> list[str]:
        content = ["content_target"] if self.content_layer else []
        guides = [name for s in self.style_layers for name in (gram_name(s), mask_input_name(s))]
        return [*self.taps, *content, *guides, "content_weight", "style_weights"]

    def _style(
        self, i: int, layer: str, flat: torch.Tensor, positions: torch.Tensor, named: dict
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # (F ⊙ m)(F ⊙ m)ᵀ = (F ⊙ m²) Fᵀ, and the gradient Σ_r c_r (D_r F) ⊙ m_r² = [c_1 D_1 … c_R D_R]
        # [F ⊙ m_1²; …; F ⊙ m_R²]: one [R, C, P] temporary (F ⊙ m²) and one matmul into [C, P].
        mask = named[mask_input_name(layer)]
        m2 = (mask * mask).reshape(mask.shape[0], 1, -1)  # [R, 1, P]
        norm = m2.sum(dim=(1, 2)).clamp_min(1e-12)  # Σ m² per region
        weighted = flat.unsqueeze(0) * m2  # [R, C, P]
        d = weighted @ flat.T / norm.view(-1, 1, 1) - named[gram_name(layer)]  # [R, C, C]
        regions, channels = d.shape[0], d.shape[1]
        w = named["style_weights"][:, i]
        coef = (w * (4.0 / (channels * channels)) / norm).view(-1, 1, 1)
        stacked = (d * coef).permute(1, 0, 2).reshape(channels, regions * channels)
        grad = stacked @ weighted.reshape(regions * channels, -1)
        return (w * d.pow(2).mean(dim=(1, 2))).sum(), grad

    def _style_reference(self, i: int, layer: str, flat: torch.Tensor, named: dict) -> torch.Tensor:
        total = flat.new_zeros(())
        for r, mask in enumerate(named[mask_input_name(layer)]):
            m = mask.reshape(1, -1)
            g = (flat * m) @ (flat * m).T / (m * m).sum().clamp_min(1e-12)
            total = total + named["style_weights"][r, i] * (g - named[gram_name(layer)][r]).pow(2).mean()
        return total
