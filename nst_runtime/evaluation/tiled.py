"""The objective evaluated tile by tile, exactly: memory bounded by a tile, not by the image.

Galerne et al., "Scaling Painting Style Transfer" (2022), with the same Gatys objective:

1. *Statistics pass.* Each tile runs the feature graph; each tapped layer is cropped to the
   tile's inner region (the inner regions partition the image, see ``nst_runtime.tiles``) and
   the Gram sums S = Σ_p m_p² f_p f_pᵀ and the content residual Σ (F − T)² are accumulated in
   float64. G = S / Σ m² uses the whole layer's positions (m = 1 without a mask).
2. *Gradient pass.* With G known, the upstream gradient is local to each position:
   ∂E/∂f_p = 4 w / (C² Σm²) · m_p² (G − A) f_p for a style term, 2 w_c / N (F_p − T_p) for the
   content. Each tile runs the gradient graph with it; the tiles' image gradients are stitched:
   - ``sum`` (the default): the upstream gradient is zeroed outside the tile's inner region on
     every layer and the tiles' whole image gradients are summed where they overlap. Each
     position's contribution is counted once, through a tile where its features are exact, so
     the forward halo (80 px) suffices.
   - ``crop`` (SPST's): the upstream gradient is given on the whole tile and only the inner part
     of the tile's image gradient is kept; that needs twice the halo (160 px).
   Measured here, ``sum`` is the faster (docs/benchmarks.md), which is why it is the default.

Masks (``StyleTerm.mask``) enter both passes as the per-position weights m², so masked (region)
terms and tiles compose. The last tile of the statistics pass starts the gradient pass, which
walks the tiles backwards, so that tile's forward is not run twice.
"""

from __future__ import annotations

import torch

from nst_export.architecture import output_shape

from ..imaging.masks import on_layers
from ..objective.terms import Objective, StyleTerm
from ..planning.tiles import Tile, halos, layer_scale, plan_tiles
from ..vgg.features import VGG
from .base import Parts, with_pixel_terms

STITCHINGS = ("sum", "crop")


class _Geometry:
    """The tiles of one image size and the layer scales the objective reads."""

    def __init__(self, vgg: VGG, height: int, width: int, tile: int, stitch: str, layers: tuple[str, ...]):
        if stitch not in STITCHINGS:
            raise ValueError(f"unknown stitching {stitch!r}")
        plan = vgg.graphs.plan
        self.height, self.width, self.stitch = height, width, stitch
        self.tiles = plan_tiles(height, width, tile, halos(plan)[stitch])
        self.scale = {layer: layer_scale(plan, layer) for layer in layers}
        self.shape = {layer: output_shape(plan, layer, height, width) for layer in layers}


def _crop(tensor: torch.Tensor, rows: slice, cols: slice) -> torch.Tensor:
    return tensor[..., rows, cols]


def _forward(vgg: VGG, x: torch.Tensor, tile: Tile) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    vgg.check_cancel()
    return vgg.forward(_crop(x, *tile.image_slices()))


def _flat(features: torch.Tensor) -> torch.Tensor:
    """[1, C, h, w] (any strides) → [C, h·w]."""
    return features.reshape(features.shape[1], -1)


class GramSum:
    """A Gram matrix's running sum over the tiles in float64, and its normaliser: the whole
    layer's positions N, or Σ m² for a guided Gram with per-position weights ``mask``."""

    def __init__(self, shape: tuple[int, ...], mask: torch.Tensor | None, device: torch.device):
        self.mask = mask
        channels = shape[1]
        self.sum = torch.zeros((channels, channels), dtype=torch.float64, device=device)
        self.norm = float(shape[2] * shape[3]) if mask is None else float(mask.double().pow(2).sum().clamp_min(1e-12))

    def weights(self, rows: slice, cols: slice) -> torch.Tensor | None:
        """The per-position weights m² on a part of the layer grid (None: all ones)."""
        return None if self.mask is None else self.mask[rows, cols].to(torch.float32).pow(2)

    def add(self, features: torch.Tensor, weights: torch.Tensor | None) -> None:
        flat = _flat(features)
        weighted = flat if weights is None else flat * weights.reshape(1, -1)
        self.sum += (weighted @ flat.T).double()

    def gram(self) -> torch.Tensor:
        return self.sum / self.norm


class StyleSum(GramSum):
    """One style term's running Gram sum over the tiles."""

    def __init__(self, term: StyleTerm, shape: tuple[int, ...]):
        super().__init__(shape, term.mask, term.target.device)
        self.term = term

    def loss_and_coefficient(self) -> tuple[float, torch.Tensor]:
        """(w · mean((G − A)²), the matrix 4 w / (C² Σm²) · (G − A) the upstream gradient needs)."""
        diff = self.gram() - self.term.target.double()
        channels = diff.shape[0]
        loss = self.term.weight * float(diff.pow(2).mean())
        coefficient = diff * (4.0 * self.term.weight / (channels * channels * self.norm))
        return loss, coefficient.to(torch.float32)


class TiledEvaluator:
    """Any objective, tile by tile, through the two graphs; exact up to float rounding."""

    def __init__(self, vgg: VGG, objective: Objective, tile: int, stitch: str = "sum"):
        self.vgg, self.objective = vgg, objective
        self.geometry = _Geometry(vgg, objective.height, objective.width, tile, stitch, objective.layers)

    @property
    def tiles(self) -> list[Tile]:
        return self.geometry.tiles

    def __call__(self, x: torch.Tensor) -> tuple[Parts, torch.Tensor]:
        objective, geometry = self.objective, self.geometry
        styles = [StyleSum(t, geometry.shape[t.layer]) for t in objective.styles]
        content_sq = torch.zeros((), dtype=torch.float64, device=x.device)
        outputs: dict[str, torch.Tensor] = {}
        for tile in geometry.tiles:
            outputs = {}  # the tile before's outputs go before this tile's arrive
            outputs = _forward(self.vgg, x, tile)[1]
            content_sq += self._statistics(tile, outputs, styles)
        parts: Parts = {"content": 0.0, "style": 0.0}
        coefficients = []
        for s in styles:
            loss, coefficient = s.loss_and_coefficient()
            parts["style"] += loss
            coefficients.append(coefficient)
        content_scale = 0.0
        if objective.content is not None:
            count = objective.content.target.numel()
            parts["content"] = objective.content.weight * float(content_sq) / count
            content_scale = 2.0 * objective.content.weight / count
        parts["total"] = parts["content"] + parts["style"]
        grad = torch.zeros_like(x, dtype=torch.float32)
        for tile in reversed(geometry.tiles):  # the last tile's forward is still at hand
            if not outputs:
                outputs = _forward(self.vgg, x, tile)[1]
            upstream = self.upstream(tile, outputs, styles, coefficients, content_scale)
            tile_grad = self.vgg.backward(outputs, upstream, tile.height, tile.width)
            outputs, upstream = {}, {}
            if geometry.stitch == "sum":
                _crop(grad, *tile.image_slices()).add_(tile_grad)
            else:
                _crop(grad, *tile.inner_slices()).copy_(_crop(tile_grad, *tile.local_inner_slices()))
            del tile_grad
        return with_pixel_terms(objective, x, parts, grad)

    def _statistics(self, tile: Tile, outputs: dict[str, torch.Tensor], styles: list[StyleSum]) -> torch.Tensor:
        """Adds the tile's inner region to the Gram sums; returns its Σ (F − T)² of the content."""
        for s in styles:
            scale = self.geometry.scale[s.term.layer]
            weights = s.weights(*tile.layer_inner_slices(scale))
            s.add(_crop(outputs[s.term.layer], *tile.local_inner_slices(scale)), weights)
        content = self.objective.content
        if content is None:
            return torch.zeros((), dtype=torch.float64)
        scale = self.geometry.scale[content.layer]
        f = _crop(outputs[content.layer], *tile.local_inner_slices(scale))
        t = _crop(content.target, *tile.layer_inner_slices(scale))
        return (f - t).pow(2).sum(dtype=torch.float64)

    def upstream(
        self,
        tile: Tile,
        taps: dict[str, torch.Tensor],  # the feature graph's outputs: the taps and the saved tensors
        styles: list[StyleSum],
        coefficients: list[torch.Tensor],
        content_scale: float,
    ) -> dict[str, torch.Tensor]:
        """d objective / d tap on this tile's grid, zero where the stitching ignores it."""
        geometry, objective = self.geometry, self.objective
        upstream: dict[str, torch.Tensor] = {}
        for s, coefficient in zip(styles, coefficients, strict=True):
            layer = s.term.layer
            f = taps[layer]
            g = (coefficient @ _flat(f)).view(f.shape)
            g = self._weighted(g, tile, geometry.scale[layer], s)
            upstream[layer] = upstream[layer].add_(g) if layer in upstream else g
        if objective.content is not None:
            layer = objective.content.layer
            scale = geometry.scale[layer]
            target = _crop(objective.content.target, *tile.layer_slices(scale))
            g = (taps[layer] - target).mul_(content_scale)
            g = self._weighted(g, tile, scale, None)
            upstream[layer] = upstream[layer].add_(g) if layer in upstream else g
        for layer in self.vgg.taps:
            if layer not in upstream:
                upstream[layer] = torch.zeros_like(taps[layer])
        return upstream

    def _weighted(self, g: torch.Tensor, tile: Tile, scale: int, style: StyleSum | None) -> torch.Tensor:
        """Applies the mask weights and, for ``sum`` stitching, zeroes g outside the inner region
        (in place: g is the size of a tap, and the gradient pass holds every tap already)."""
        if self.geometry.stitch == "sum":
            rows, cols = tile.local_inner_slices(scale)
            g[..., : rows.start, :] = 0
            g[..., rows.stop :, :] = 0
            g[..., :, : cols.start] = 0
            g[..., :, cols.stop :] = 0
            weights = style.weights(*tile.layer_inner_slices(scale)) if style is not None else None
            if weights is not None:
                _crop(g, rows, cols).mul_(weights)
            return g
        weights = style.weights(*tile.layer_slices(scale)) if style is not None else None
        return g if weights is None else g.mul_(weights)


# --- the targets: whole-layer features and Gram matrices of images too large to run whole ---


def tiled_features(vgg: VGG, image: torch.Tensor, layers: tuple[str, ...], tile: int) -> dict[str, torch.Tensor]:
    """The taps of ``image`` on the whole layer grids, stitched from each tile's inner region."""
    geometry = _Geometry(vgg, image.shape[2], image.shape[3], tile, "sum", layers)
    out = {layer: torch.empty(geometry.shape[layer], device=vgg.torch_device) for layer in layers}
    for tile_ in geometry.tiles:
        taps, _ = _forward(vgg, image, tile_)
        for layer in layers:
            scale = geometry.scale[layer]
            _crop(out[layer], *tile_.layer_inner_slices(scale)).copy_(
                _crop(taps[layer], *tile_.local_inner_slices(scale))
            )
    return out


def tiled_grams(
    vgg: VGG, image: torch.Tensor, layers: tuple[str, ...], tile: int, mask: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """The Gram matrix of each layer of ``image`` (guided by ``mask`` [H, W] at the image's size,
    as ``gram`` is), summed over the tiles' inner regions in float64."""
    geometry = _Geometry(vgg, image.shape[2], image.shape[3], tile, "sum", layers)
    grids = on_layers(mask, {layer: geometry.shape[layer][2:] for layer in layers}) if mask is not None else {}
    sums = {layer: GramSum(geometry.shape[layer], grids.get(layer), vgg.torch_device) for layer in layers}
    for tile_ in geometry.tiles:
        taps, _ = _forward(vgg, image, tile_)
        for layer, s in sums.items():
            scale = geometry.scale[layer]
            s.add(_crop(taps[layer], *tile_.local_inner_slices(scale)), s.weights(*tile_.layer_inner_slices(scale)))
    return {layer: s.gram().to(torch.float32) for layer, s in sums.items()}
