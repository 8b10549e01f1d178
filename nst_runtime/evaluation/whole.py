"""The whole image in one piece: the fused (or guided) one-graph loss, or the two graphs and torch
autograd for any other objective."""

from __future__ import annotations

import torch

from nst_export.architecture import output_shape

from ..objective.terms import Objective
from ..vgg.features import VGG
from .base import Parts, with_pixel_terms


class AutogradEvaluator:
    """Any objective, through the two graphs and torch autograd."""

    def __init__(self, vgg: VGG, objective: Objective):
        self.vgg, self.objective = vgg, objective

    def __call__(self, x: torch.Tensor) -> tuple[Parts, torch.Tensor]:
        self.vgg.check_cancel()
        objective = self.objective
        xt = x.detach().requires_grad_(True)
        tensors = objective.feature_losses(self.vgg.features(xt, objective.layers)) if objective.layers else {}
        tensors.update(objective.pixel_losses(xt))
        total = sum(tensors.values(), xt.new_zeros(()))
        total.backward()
        parts = {k: float(v.detach()) for k, v in tensors.items()}
        parts["total"] = float(total.detach())
        grad = xt.grad if xt.grad is not None else torch.zeros_like(xt)
        return parts, grad


class FusedEvaluator:
    """The built-in objective through a one-graph loss: ``graph`` "fused" (plain Grams) or
    "guided" (masked regions); ``inputs`` are that graph's target inputs."""

    def __init__(self, vgg: VGG, objective: Objective, inputs: dict[str, torch.Tensor], graph: str = "fused"):
        self.vgg, self.objective, self.inputs, self.graph = vgg, objective, inputs, graph

    def __call__(self, x: torch.Tensor) -> tuple[Parts, torch.Tensor]:
        self.vgg.check_cancel()
        parts, grad = self.vgg.loss_and_grad(x, self.inputs, self.graph)
        return with_pixel_terms(self.objective, x, parts, grad)


def whole_image_graph(vgg: VGG, objective: Objective) -> str | None:
    """Which one-graph loss says this objective exactly: "fused" (the content layer and at most one
    unmasked Gram term per loss layer), "guided" (any number of masked terms on the loss layers),
    or None (the two-graph autograd path). A cheap test on the terms' layers and masks, so the
    memory planner can ask it before any O(image) target tensor is built for a whole-image run
    that tiling would throw away (a 24-MP image's guided masks are ~250 MB)."""
    style_layers = vgg.graphs.loss_layers[1]
    content_layer = vgg.graphs.loss_layers[0]
    if objective.content is not None and objective.content.layer != content_layer:
        return None
    if any(term.layer not in style_layers for term in objective.styles):
        return None
    layers = [term.layer for term in objective.styles]
    if all(term.mask is None for term in objective.styles) and len(set(layers)) == len(layers):
        return "fused"
    return "guided" if vgg.graphs.has("guided") else None


def fused_inputs(vgg: VGG, objective: Objective) -> dict[str, torch.Tensor] | None:
    """The fused graph's target inputs for this objective, or None when its built-in loss differs."""
    if whole_image_graph(vgg, objective) != "fused":
        return None
    style_layers = vgg.graphs.loss_layers[1]
    content = _content_inputs(vgg, objective)
    by_layer = {term.layer: term for term in objective.styles}
    device = vgg.torch_device
    inputs: dict[str, torch.Tensor] = dict(content[0])
    weights = []
    for layer in style_layers:
        term = by_layer.get(layer)
        channels = output_shape(vgg.graphs.plan, layer, objective.height, objective.width)[1]
        inputs[f"gram_{layer}"] = term.target if term is not None else torch.zeros((channels, channels))
        weights.append(term.weight if term is not None else 0.0)
    inputs["content_weight"] = torch.tensor(content[1], dtype=torch.float32, device=device)
    inputs["style_weights"] = torch.tensor(weights, dtype=torch.float32, device=device)
    return inputs


def _content_inputs(vgg: VGG, objective: Objective) -> tuple[dict[str, torch.Tensor], float] | None:
    """({"content_target": …} or {} when the graphs' loss has no content layer, the content weight)
    as the loss graphs take them, or None when the objective's content layer is another one."""
    content_layer = vgg.graphs.loss_layers[0]
    if objective.content is not None:
        if objective.content.layer != content_layer:
            return None
        return {"content_target": objective.content.target}, objective.content.weight
    if content_layer is None:
        return {}, 0.0
    shape = output_shape(vgg.graphs.plan, content_layer, objective.height, objective.width)
    return {"content_target": torch.zeros(shape, device=vgg.torch_device)}, 0.0


def guided_inputs(vgg: VGG, objective: Objective) -> dict[str, torch.Tensor] | None:
    """The guided graph's inputs: per style layer R stacked targets [R, C, C] and masks [R, h, w]
    (ones for an unmasked term), weights [R, L]; layers with fewer terms are padded with terms of
    weight 0 and an all-zero mask, which add exactly nothing. None when the graphs cannot say it."""
    if whole_image_graph(vgg, objective) is None or not vgg.graphs.has("guided") or not objective.styles:
        return None
    style_layers = vgg.graphs.loss_layers[1]
    content = _content_inputs(vgg, objective)
    by_layer: dict[str, list] = {layer: [] for layer in style_layers}
    for term in objective.styles:
        by_layer[term.layer].append(term)
    regions = max(len(terms) for terms in by_layer.values())
    device = vgg.torch_device
    inputs: dict[str, torch.Tensor] = dict(content[0])
    weights = torch.zeros((regions, len(style_layers)), dtype=torch.float32)
    for i, layer in enumerate(style_layers):
        _, channels, height, width = output_shape(vgg.graphs.plan, layer, objective.height, objective.width)
        grams = torch.zeros((regions, channels, channels), device=device)
        masks = torch.zeros((regions, height, width), device=device)
        for r, term in enumerate(by_layer[layer]):
            grams[r] = term.target
            masks[r] = term.mask if term.mask is not None else 1.0
            weights[r, i] = term.weight
        inputs[f"gram_{layer}"], inputs[f"mask_{layer}"] = grams, masks
    inputs["content_weight"] = torch.tensor(content[1], dtype=torch.float32, device=device)
    inputs["style_weights"] = weights.to(device)
    return inputs
