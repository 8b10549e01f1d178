"""The non-interactive run (scripts, batch mode, Repeat): no dialog, GIMP's progress, the final result.

The image is touched only after every worker has answered "done", inside one undo group.
"""

from __future__ import annotations

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402

from . import launch as launching  # noqa: E402
from .arguments import job_options, resolve_styles, result_name, styles_request  # noqa: E402
from .layers import add_result_layers, decode_result, inline_image  # noqa: E402
from .progress import progress_text  # noqa: E402
from .regions import cut_out, layer_masks  # noqa: E402
from .worker_client import run_to_end  # noqa: E402


def stylize_layers(image: Gimp.Image, layers: list[Gimp.Layer], config: Gimp.ProcedureConfig) -> list[Gimp.Layer]:
    """Run the worker for every layer, then add all result layers in one undo group."""
    launch = launching.launch_for_gimp(Gimp.directory())
    styles = resolve_styles(config)
    base = {**styles_request(styles), "options": job_options(config)}
    masks = layer_masks(image, layers, config, [s.slot for s in styles])
    results = []
    Gimp.progress_init("Neural style transfer: starting")
    for index, src in enumerate(layers):
        prefix = f"{src.get_name()}: " if len(layers) > 1 else ""

        def on_event(event: dict, index: int = index, prefix: str = prefix) -> None:
            text = progress_text(event, prefix)
            if text:
                Gimp.progress_set_text(text)
            fraction = event.get("fraction")
            if isinstance(fraction, (int, float)):
                Gimp.progress_update((index + min(max(fraction, 0.0), 1.0)) / len(layers))

        done = run_to_end(launch, {"content": inline_image(src), **base, **masks[index]}, on_event)
        results.append((src, decode_result(done, src)))
    Gimp.progress_set_text("Neural style transfer: adding the result")
    added = add_result_layers(image, results, result_name(styles), cut_out(config, [s.slot for s in styles]))
    Gimp.progress_end()
    return added
