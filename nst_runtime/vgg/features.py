"""VGG features as a differentiable torch function whose forward and backward run in onnxruntime.

``VGG.features(image)`` behaves like any torch op: losses built on its outputs backpropagate to
the image. Its forward runs the feature graph, keeps the saved tensors (ReLU masks, max-pool
routes: bool) on the autograd context, and its backward feeds them with the upstream gradients to
the gradient graph. Inputs and outputs are bound to torch tensors' memory (IOBinding), so on
CUDA nothing passes through host memory between iterations and on the CPU nothing is copied.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import onnxruntime as ort
import torch

from nst_export import DEFAULT_LAYERS
from nst_export.architecture import output_shape

from ..errors import Cancelled, NSTError
from .graphs import GraphSet, ensure_graphs, style_part
from .sessions import create_session

MIN_SIDE = 16  # four poolings leave relu5_1 one pixel wide

_TORCH_TO_NUMPY = {torch.float32: np.float32, torch.bool: np.bool_}


class VGG:
    """The two onnxruntime sessions of one graph set, on one device."""

    def __init__(self, graphs: GraphSet, device: str = "auto", threads: int | None = None):
        self.graphs = graphs
        self.taps = graphs.taps
        self._plan = graphs.plan
        self._threads = threads
        self._feature, self.device = create_session(graphs.feature_path, device, threads)
        self._lazy: dict[str, ort.InferenceSession] = {}  # gradient and fused graphs, made on first use
        self._saved = {s["name"]: s for s in graphs.manifest["saved"]}
        self._outputs = graphs.feature_outputs
        self._grad_inputs = graphs.gradient_inputs
        self._run_options = ort.RunOptions()
        self._cancel: threading.Event | None = None

    @property
    def torch_device(self) -> torch.device:
        return torch.device("cuda" if self.device == "cuda" else "cpu")

    # --- cancellation: ORT aborts a running graph when its RunOptions' terminate flag is set ---

    @contextmanager
    def cancellable(self, cancel: threading.Event | None) -> Iterator[None]:
        """Within this block, setting ``cancel`` aborts the graph that is running within ~0.1 s."""
        self._run_options = ort.RunOptions()
        self._cancel = cancel
        done = threading.Event()
        watcher = None
        if cancel is not None:
            run_options = self._run_options

            def watch() -> None:
                while not done.is_set():
                    if cancel.wait(0.05):
                        run_options.terminate = True
                        return

            watcher = threading.Thread(target=watch, name="nst-cancel-watch", daemon=True)
            watcher.start()
        try:
            yield
        finally:
            done.set()
            if watcher is not None:
                watcher.join()
            self._cancel = None
            self._run_options = ort.RunOptions()  # a terminated RunOptions would abort every later run

    def check_cancel(self) -> None:
        if self._cancel is not None and self._cancel.is_set():
            raise Cancelled()

    def _session(self, role: str) -> ort.InferenceSession:
        if role not in self._lazy:
            path = {"gradient": self.graphs.gradient_path, "guided": self.graphs.guided_path}.get(
                role, self.graphs.fused_path
            )
            self._lazy[role], _ = create_session(path, self.device, self._threads)
        return self._lazy[role]

    # --- the graphs ---

    def _shape(self, name: str, height: int, width: int) -> tuple[int, ...]:
        layer = self._saved[name]["layer"] if name in self._saved else name
        return output_shape(self._plan, layer, height, width)

    def _dtype(self, name: str) -> torch.dtype:
        kind = self._saved[name]["kind"] if name in self._saved else "feature"
        return torch.bool if kind == "mask" else torch.float32

    def run_session(
        self, session: ort.InferenceSession, inputs: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]
    ) -> None:
        """Run ``session`` with its inputs and outputs bound to these tensors' memory (no copies);
        a cancel aborts it (``cancellable``) and any failure is one NSTError line."""
        binding = session.io_binding()
        device_type = "cuda" if self.device == "cuda" else "cpu"
        device_id = torch.cuda.current_device() if self.device == "cuda" else 0
        for name, tensor in inputs.items():
            binding.bind_input(
                name, device_type, device_id, _TORCH_TO_NUMPY[tensor.dtype], tuple(tensor.shape), tensor.data_ptr()
            )
        for name, tensor in outputs.items():
            binding.bind_output(
                name, device_type, device_id, _TORCH_TO_NUMPY[tensor.dtype], tuple(tensor.shape), tensor.data_ptr()
            )
        if self.device == "cuda":
            torch.cuda.current_stream().synchronize()  # ORT uses its own stream
        try:
            session.run_with_iobinding(binding, self._run_options)
        except Exception as exc:
            self.check_cancel()
            raise NSTError(f"onnxruntime failed: {str(exc).splitlines()[0][:200]}") from None
        self.check_cancel()

    def release_memory(self) -> None:
        """Hand the arena's free chunks back to the system (nst_runtime.memory, issue 11).

        onnxruntime keeps every chunk its arena ever grew to; the memory planner gives each scale
        the room its own buffers leave, so what a larger evaluation of an earlier scale left in
        the arena must go before the next scale's buffers arrive. A tiny run with the shrink
        option does it.
        """
        shrink = ort.RunOptions()
        shrink.add_run_config_entry(
            "memory.enable_memory_arena_shrinkage", f"{'gpu' if self.device == 'cuda' else 'cpu'}:0"
        )
        current, self._run_options = self._run_options, shrink
        try:
            self.forward(torch.zeros((1, 3, MIN_SIDE, MIN_SIDE), device=self.torch_device))
        finally:
            self._run_options = current

    def forward(self, image: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(taps, saved tensors) for an image [1, 3, H, W] in [0, 1]."""
        _check_image(image)
        image = image.detach().to(self.torch_device, torch.float32).contiguous()
        height, width = image.shape[2], image.shape[3]
        outputs = {
            name: torch.empty(self._shape(name, height, width), dtype=self._dtype(name), device=self.torch_device)
            for name in self._outputs
        }
        self.run_session(self._feature, {"image": image}, outputs)
        taps = {name: outputs[name] for name in self.taps}
        return taps, outputs

    def backward(self, saved: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], height: int, width: int):
        """d(Σ ⟨grads[tap], tap⟩)/d image, from the saved tensors of the forward."""
        inputs = {}
        for name in self._grad_inputs:
            if name.startswith("grad_"):
                g = grads[name.removeprefix("grad_")]
                inputs[name] = g.detach().to(self.torch_device, torch.float32).contiguous()
            else:
                inputs[name] = saved[name]
        grad_image = torch.empty((1, 3, height, width), dtype=torch.float32, device=self.torch_device)
        self.run_session(self._session("gradient"), inputs, {"grad_image": grad_image})
        return grad_image

    def loss_and_grad(
        self, image: torch.Tensor, targets: dict[str, torch.Tensor], graph: str = "fused"
    ) -> tuple[dict[str, float], torch.Tensor]:
        """The fused graph: the built-in Gatys loss and d loss / d image in one run.

        ``targets`` holds ``content_target``, ``gram_<layer>`` for each style layer,
        ``content_weight`` (a scalar tensor) and ``style_weights`` (one per style layer); for the
        ``graph`` "guided" also ``mask_<layer>``, with a leading region axis on grams and weights.
        """
        _check_image(image)
        image = image.detach().to(self.torch_device, torch.float32).contiguous()
        inputs = {"image": image}
        for name in self.graphs.inputs_of(graph)[1:]:
            inputs[name] = targets[name].detach().to(self.torch_device, torch.float32).contiguous()
        scalars = {
            n: torch.empty((), dtype=torch.float32, device=self.torch_device)
            for n in ("loss", "content_loss", "style_loss")
        }
        grad = torch.empty_like(image)
        style_layers = self.graphs.loss_layers[1]
        per_layer = torch.empty(len(style_layers), dtype=torch.float32, device=self.torch_device)
        outputs = {**scalars, "grad_image": grad}
        if style_layers:  # an empty tensor has no data pointer to bind, and there is nothing to read
            outputs["style_losses"] = per_layer
        self.run_session(self._session(graph), inputs, outputs)
        parts = {
            "total": float(scalars["loss"]),
            "content": float(scalars["content_loss"]),
            "style": float(scalars["style_loss"]),
        }
        parts.update(zip((style_part(layer) for layer in style_layers), per_layer.tolist(), strict=True))
        return parts, grad

    def features(self, image: torch.Tensor, layers: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """The taps as differentiable tensors (the gradient flows through the gradient graph)."""
        wanted = self.taps if layers is None else tuple(layers)
        unknown = [layer for layer in wanted if layer not in self.taps]
        if unknown:
            raise NSTError(f"these graphs have no layer {unknown[0]!r} (they tap {', '.join(self.taps)})")
        values = _VGGFunction.apply(image, self)
        out = dict(zip(self.taps, values, strict=True))
        return {layer: out[layer] for layer in wanted}


class _VGGFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, image: torch.Tensor, vgg: VGG):  # type: ignore[override]
        taps, saved = vgg.forward(image)
        ctx.vgg = vgg
        ctx.saved_graph_tensors = saved
        ctx.image_shape = (image.shape[2], image.shape[3])
        ctx.image_device = image.device
        return tuple(taps[t] for t in vgg.taps)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):  # type: ignore[override]
        vgg: VGG = ctx.vgg
        named = {}
        for tap, g in zip(vgg.taps, grads, strict=True):
            named[tap] = g if g is not None else torch.zeros_like(ctx.saved_graph_tensors[tap])
        grad_image = vgg.backward(ctx.saved_graph_tensors, named, *ctx.image_shape)
        ctx.saved_graph_tensors = None  # free the masks and routes as soon as possible
        return grad_image.to(ctx.image_device), None


def _check_image(image: torch.Tensor) -> None:
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise NSTError(f"image must have shape [1, 3, H, W], got {list(image.shape)}")
    if min(image.shape[2], image.shape[3]) < MIN_SIDE:
        raise NSTError(f"image must be at least {MIN_SIDE}×{MIN_SIDE} pixels, got {image.shape[3]}×{image.shape[2]}")


_default: dict[tuple, VGG] = {}
_default_lock = threading.Lock()


def get_vgg(
    weights: str = "vgg19",
    pooling: str = "max",
    layers: tuple[str, ...] = DEFAULT_LAYERS,
    device: str = "auto",
    graphs_dir: str | None = None,
    log=lambda _m: None,
) -> VGG:
    """A cached VGG for this configuration (sessions are expensive to create)."""
    key = (weights, pooling, tuple(layers), device, graphs_dir)
    with _default_lock:
        if key not in _default:
            graphs = ensure_graphs(weights, pooling, tuple(layers), graphs_dir, log=log)
            _default[key] = VGG(graphs, device)
        return _default[key]


def vgg_features(
    image: torch.Tensor,
    layers: tuple[str, ...] | list[str] | None = None,
    *,
    weights: str = "vgg19",
    pooling: str = "max",
    device: str = "auto",
) -> dict[str, torch.Tensor]:
    """VGG activations of ``image`` ([1, 3, H, W], RGB in [0, 1]), differentiable w.r.t. the image.

    ``layers`` defaults to relu1_1, relu2_1, relu3_1, relu4_1, relu4_2 and relu5_1; others are
    exported on first use.
    """
    wanted = tuple(layers) if layers is not None else DEFAULT_LAYERS
    graph_layers = DEFAULT_LAYERS if set(wanted) <= set(DEFAULT_LAYERS) else wanted
    return get_vgg(weights, pooling, graph_layers, device).features(image, wanted)
