"""The live dialog: watch the painting form, apply it when it looks right.

The dialog stays open while the worker runs. A preview area shows the best image so far (the
worker sends one about every second), masked by the selection when the result will be; a plain
Gtk.ProgressBar shows the scale, the step and the time left; an estimate line prices the
current settings before Run (the worker's estimate session, kept open while the dialog is).

Buttons: **Run** starts (or restarts with changed settings), **Apply now** asks the worker for
the best image so far at full size and adds it as the layer, **Full size** continues the preview
so far to the layer's own size (the look the user approved is the look the layer gets; only the
scales above the preview's run) and adds that, **Stop** ends the run and leaves the image
untouched, **Close** stops and closes. A run that finishes by itself adds its layer as the
non-interactive run does. Either way the dialog then closes and the procedure returns SUCCESS.

Threads: each worker's stdout is read in a thread of its own that only parses lines (and
decodes preview pixels); every line reaches the main loop through ``GLib.idle_add``. All Gimp
and GTK calls stay on the main thread: the PDB is not thread-safe. Stopping a worker (which may
wait up to a second) runs in a thread too, so the dialog never freezes.

``NST_PLUGIN_TRACE=FILE`` appends what the dialog did as JSON lines (tests and bug reports).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Callable

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
gi.require_version("GdkPixbuf", "2.0")
from gi.repository import GdkPixbuf, Gimp, GimpUi, GLib, GObject, Gtk  # noqa: E402

from . import launch as launching  # noqa: E402
from .arguments import (  # noqa: E402
    EXTRA_STYLES,
    blend_weights,
    has_style,
    job_options,
    resolve_styles,
    result_name,
    styles_request,
)
from .device_choice import automatic_label, relabel_automatic  # noqa: E402
from .errors import Cancelled, PlugInError  # noqa: E402
from .layers import add_result_layers, decode_result, inline_image, scaled_rgba, selection_mask  # noqa: E402
from .progress import progress_text  # noqa: E402
from .regions import cut_out, layer_masks  # noqa: E402
from .worker_client import WorkerProcess, log  # noqa: E402

RESPONSE_RUN, RESPONSE_APPLY, RESPONSE_STOP, RESPONSE_FULL = 10, 11, 12, 13  # 1 is the ProcedureDialog's own Reset
RESPONSE_RESET = 1
PREVIEW_SIDE = 320  # the preview area's longest side; the worker sends previews no larger
PREVIEW_INTERVAL_S = 1.0
ESTIMATE_DELAY_MS = 300  # settle time after a settings change before asking for a new estimate
SETTINGS = (
    "strength", "size", "quality", "preserve-colors", "seed", "device", "max-memory", "use-selection",
    "outside-selection",
)  # fmt: skip


class Trace:
    """JSON lines of what the dialog did, to $NST_PLUGIN_TRACE (nothing when unset)."""

    def __init__(self) -> None:
        self.path = os.environ.get("NST_PLUGIN_TRACE") or None

    def __call__(self, event: str, **data: object) -> None:
        if self.path is None:
            return
        line = json.dumps({"t": time.time(), "event": event, **data})
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError as exc:
            log(f"cannot write the trace {self.path}: {exc}")
            self.path = None


def pump(worker: WorkerProcess, on_message: Callable[[dict], None], on_end: Callable[[], None]) -> None:
    """Read a worker's lines in a thread; hand each to the main loop (preview pixels decoded here)."""

    def reader() -> None:
        for msg in worker.messages():
            if msg.get("event") == "preview" and isinstance(msg.get("rgba"), str):
                try:
                    msg["pixels"] = base64.b64decode(msg.pop("rgba"))
                except ValueError:
                    continue
            GLib.idle_add(lambda m=msg: on_message(m) and False)
        GLib.idle_add(lambda: on_end() and False)

    threading.Thread(target=reader, name="nst-worker-reader", daemon=True).start()


def stop_in_background(worker: WorkerProcess, trace: Trace) -> threading.Thread:
    """Stop a worker without blocking the main loop (it may take up to a second)."""

    def stop() -> None:
        worker.stop()
        worker.terminate()
        trace("worker-gone", pid=worker.pid)

    thread = threading.Thread(target=stop, name="nst-worker-stop", daemon=True)
    thread.start()
    return thread


class Preview:
    """A GimpPreviewArea with the source layer scaled to fit, and results drawn over it."""

    def __init__(self, image: Gimp.Image, layer: Gimp.Layer, masked: Callable[[], bool]) -> None:
        self.image, self.layer, self.masked = image, layer, masked
        w, h = layer.get_width(), layer.get_height()
        factor = PREVIEW_SIDE / max(w, h)
        self.width, self.height = max(1, round(w * factor)), max(1, round(h * factor))
        self.area = GimpUi.PreviewArea.new()
        self.area.set_size_request(self.width, self.height)
        self.area.set_max_size(self.width, self.height)
        self.source = scaled_rgba(layer, self.width, self.height)
        self.shown = 0

    def show_source(self) -> None:
        self._draw(self.source)

    def show(self, width: int, height: int, pixels: bytes) -> None:
        """A worker preview (RGBA, any size): scaled to fit, the layer's alpha, the selection's effect."""
        if len(pixels) != width * height * 4:
            return
        pix = GdkPixbuf.Pixbuf.new_from_bytes(
            GLib.Bytes.new(pixels), GdkPixbuf.Colorspace.RGB, True, 8, width, height, width * 4
        )
        if (width, height) != (self.width, self.height):
            pix = pix.scale_simple(self.width, self.height, GdkPixbuf.InterpType.BILINEAR)
        data, stride, row = pix.get_pixels(), pix.get_rowstride(), self.width * 4
        rows = (
            bytearray(data)
            if stride == row
            else bytearray(b"".join(data[y * stride : y * stride + row] for y in range(self.height)))
        )
        rows[3::4] = self.source[3::4]  # the result keeps the layer's alpha
        self._draw(bytes(rows))
        self.shown += 1

    def _draw(self, rgba: bytes) -> None:
        rgba_type, row = Gimp.ImageType.RGBA_IMAGE, self.width * 4
        mask = selection_mask(self.image, self.layer, self.width, self.height) if self.masked() else None
        if mask is not None and rgba is not self.source:
            self.area.mask(0, 0, self.width, self.height, rgba_type, self.source, row, rgba, row, mask, self.width)
        else:
            self.area.draw(0, 0, self.width, self.height, rgba_type, rgba, row)

    def rect(self, window: Gtk.Widget) -> list[int]:
        """Where the preview sits in the dialog window (x, y, width, height)."""
        coords = self.area.translate_coordinates(window, 0, 0)
        x, y = (coords[0], coords[1]) if coords else (0, 0)
        return [int(x), int(y), self.width, self.height]


class LiveDialog:
    """One dialog, the run it drives and the estimate session that prices its settings."""

    def __init__(
        self, procedure: Gimp.Procedure, config: Gimp.ProcedureConfig, image: Gimp.Image, layers: list[Gimp.Layer]
    ) -> None:
        self.procedure, self.config, self.image, self.layers = procedure, config, image, layers
        self.trace = Trace()
        self.status = Gimp.PDBStatusType.CANCEL
        self.loop = GLib.MainLoop()
        self.worker: WorkerProcess | None = None
        self.run_id = 0
        self.pending: list[Gimp.Layer] = []  # layers still to run
        self.results: list[tuple[Gimp.Layer, bytes]] = []
        self.name = ""
        self.slots: list[int] = [1]  # the style slots of the run (regions place styles by slot)
        self.masks: list[dict] = []  # per layer: the request's "masks" (or nothing)
        self.applying = False
        self.continuing = False  # Full size was pressed: the worker continues at the layer's size
        self.base_request: dict = {}
        self.source_layer: Gimp.Layer | None = None
        self.estimator: WorkerProcess | None = None
        self.estimate_id = 0
        self.estimate_ready = False  # the estimator has answered once (its speed is known)
        self.estimate_timer = 0
        self.stoppers: list[threading.Thread] = []
        self.traced_stage: tuple[object, object] | None = None
        self._build()

    # ---------------------------------------------------------------- layout

    def _build(self) -> None:
        GimpUi.init(self.procedure.get_name())
        dialog = GimpUi.ProcedureDialog.new(self.procedure, self.config, "Neural Style Transfer")
        self.dialog = dialog
        dialog.get_spin_scale("strength", 1.0)  # a slider reads better than a bare number here
        drop_down_choices(dialog, self.procedure)
        tabs, pages = [], []
        for n in (1, *EXTRA_STYLES):
            suffix = "" if n == 1 else f"-{n}"
            props = [f"style-layer{suffix}", f"style-file{suffix}"]
            props += [f"style-{n}-weight", f"style-{n}-channel"] if n > 1 else []
            dialog.get_label(f"style-{n}-tab", f"Style {n}" + (" (optional)" if n > 1 else ""), False, False)
            dialog.fill_box(f"style-{n}-page", props)
            tabs.append(f"style-{n}-tab")
            pages.append(f"style-{n}-page")
        dialog.fill_notebook("styles", tabs, pages)
        dialog.fill_box("settings", ["styles", *SETTINGS])
        dialog.fill(["settings"])

        self.preview = Preview(self.image, self.layers[0], self._masked)
        self.progress = Gtk.ProgressBar()
        self.progress.set_show_text(True)
        self.progress.set_text("Press Run to start")
        self.state = Gtk.Label(label="", xalign=0.0)
        self.state.set_line_wrap(True)
        self.state.set_max_width_chars(40)
        self.estimate = Gtk.Label(label="Estimated time: …", xalign=0.0)
        self.estimate.set_line_wrap(True)
        self.estimate.set_max_width_chars(40)
        column = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6)
        frame = Gtk.Frame()
        frame.add(self.preview.area)
        for widget in (frame, self.progress, self.state, self.estimate):
            column.pack_start(widget, False, False, 0)

        content = dialog.get_content_area()
        settings = dialog.get_widget("settings", GObject.TYPE_NONE)
        content.remove(settings)
        row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=12)
        row.pack_start(settings, True, True, 0)
        row.pack_start(column, False, False, 0)
        content.pack_start(row, True, True, 0)
        content.reorder_child(row, 0)
        row.show_all()

        for response in (Gtk.ResponseType.OK, RESPONSE_RESET):  # the dialog's own OK and Reset make no sense here
            button = dialog.get_widget_for_response(response)
            if button is not None:
                button.set_no_show_all(True)
                button.hide()
        close = dialog.get_widget_for_response(Gtk.ResponseType.CANCEL)
        close.set_label("_Close")
        self.stop_button = dialog.add_button("St_op", RESPONSE_STOP)
        self.apply_button = dialog.add_button("_Apply now", RESPONSE_APPLY)
        self.full_button = dialog.add_button("Full s_ize", RESPONSE_FULL)
        self.full_button.set_tooltip_text("Continue the preview to the layer's own size and add that")
        self.run_button = dialog.add_button("R_un", RESPONSE_RUN)  # rightmost, where OK would be
        dialog.set_default_response(RESPONSE_RUN)
        dialog.connect("response", self._on_response)
        self.config.connect("notify", self._on_setting_changed)
        self._set_running(False)

    def _masked(self) -> bool:
        slots = [1, *(n for n in EXTRA_STYLES if has_style(self.config, n))]
        return cut_out(self.config, slots) and not Gimp.Selection.is_empty(self.image)

    def _set_running(self, running: bool) -> None:
        self.apply_button.set_sensitive(running and not self.applying)
        self.full_button.set_sensitive(running and not self.applying and not self.continuing and self._below_full())
        self.stop_button.set_sensitive(running)

    def _below_full(self) -> bool:
        """Whether the run computes below the layer's own size, so that Full size has work to do."""
        size = self.base_request.get("options", {}).get("size") if self.base_request else None
        layer = self.source_layer or self.layers[0]
        return bool(size) and max(layer.get_width(), layer.get_height()) > size

    def _say(self, text: str) -> None:
        self.state.set_text(text)

    # ---------------------------------------------------------------- the dialog's life

    def run(self) -> Gimp.PDBStatusType:
        self.dialog.show()
        self.preview.show_source()
        GLib.idle_add(self._shown)
        self.loop.run()
        for thread in self.stoppers:
            thread.join(2.0)
        self.dialog.destroy()
        self.trace("closed", status=self.status.value_nick)
        return self.status

    def _shown(self) -> bool:
        self.trace("shown", preview=self.preview.rect(self.dialog), window=list(self.dialog.get_size()))
        self._start_estimator()
        return False

    def _on_response(self, dialog: Gtk.Dialog, response: int) -> None:
        if response == RESPONSE_RUN:
            self.start()
        elif response == RESPONSE_APPLY:
            self.apply_now()
        elif response == RESPONSE_STOP:
            self.stop()
        elif response == RESPONSE_FULL:
            self.full_size()
        elif response in (Gtk.ResponseType.CANCEL, Gtk.ResponseType.DELETE_EVENT, Gtk.ResponseType.CLOSE):
            self.close()

    def close(self) -> None:
        """Stop (the worker is gone before the dialog goes), end the estimate session, leave the loop."""
        if self.worker is not None:
            worker, self.worker = self.worker, None
            self.run_id += 1
            worker.stop()
            worker.terminate()
            self.trace("worker-gone", pid=worker.pid)
        if self.estimator is not None:
            self.estimator.terminate()
        self.loop.quit()

    # ---------------------------------------------------------------- a run

    def start(self) -> None:
        """Run, or restart with the current settings."""
        if self.worker is not None:
            self.stop(quiet=True)
        try:
            styles = resolve_styles(self.config)
            self.name = result_name(styles)
            self.slots = [s.slot for s in styles]
            self.masks = layer_masks(self.image, self.layers, self.config, self.slots)  # one per layer
            self.base_request = {
                **styles_request(styles),
                "options": job_options(self.config),
                "preview": {"max_side": PREVIEW_SIDE, "interval_s": PREVIEW_INTERVAL_S},
            }
            self.launch = launching.launch_for_gimp(Gimp.directory())
        except PlugInError as exc:
            self._say(str(exc))
            return
        if self.estimator is not None and not self.estimate_ready:
            # it is measuring this machine's speed: a run beside it would make it measure slow
            self.estimator.terminate()
            self.estimator = None
            self.estimate.set_text("Estimated time: measured the next time the dialog opens")
        self.pending, self.results, self.applying, self.continuing = list(self.layers), [], False, False
        self._next_layer()

    def _next_layer(self) -> None:
        src = self.pending.pop(0)
        self.run_id += 1
        run_id = self.run_id
        try:
            masks = self.masks[self.layers.index(src)]
            worker = WorkerProcess(self.launch, {"content": inline_image(src), **self.base_request, **masks})
        except PlugInError as exc:
            self._say(str(exc))
            self._set_running(False)
            return
        self.worker, self.source_layer = worker, src
        self.trace("run", pid=worker.pid, layer=src.get_name())
        self.progress.set_fraction(0.0)
        self.progress.set_text("starting the worker…")
        self._say("")
        self._set_running(True)
        pump(worker, lambda msg: self._on_message(run_id, msg), lambda: self._on_end(run_id))

    def _on_message(self, run_id: int, msg: dict) -> None:
        if run_id != self.run_id:
            return  # a stopped run's late lines
        event = msg.get("event")
        if event == "preview" and "pixels" in msg:
            if self.source_layer is self.layers[0]:
                self.preview.show(msg.get("width", 0), msg.get("height", 0), msg["pixels"])
                self.trace("preview", n=self.preview.shown, rect=self.preview.rect(self.dialog))
        elif event == "progress":
            fraction = msg.get("fraction")
            done = len(self.layers) - len(self.pending) - 1
            if isinstance(fraction, (int, float)):
                self.progress.set_fraction((done + min(max(fraction, 0.0), 1.0)) / len(self.layers))
            prefix = f"{self.source_layer.get_name()}: " if len(self.layers) > 1 else ""
            self._say("Apply now takes the current image" if not self.applying else "")
            text = progress_text(msg, prefix, loss=False, eta=True) or ""
            self.progress.set_text(text)
            stage = (msg.get("scale"), msg.get("phase"))
            if stage != self.traced_stage:  # one trace line per scale and phase, not per step
                self.traced_stage = stage
                self.trace("progress", text=text, phase=msg.get("phase"))
        elif event in ("status", "note") and msg.get("message"):
            self._say(str(msg["message"]))
            self.trace(event, message=str(msg["message"]))

    def _on_end(self, run_id: int) -> None:
        if run_id != self.run_id or self.worker is None:
            return
        worker, self.worker = self.worker, None
        try:
            done = worker.outcome()
            self.results.append((self.source_layer, decode_result(done, self.source_layer)))
        except Cancelled:
            self._idle("Stopped: the image is unchanged")
            return
        except PlugInError as exc:
            self._idle(str(exc))
            return
        finally:
            worker.terminate()
        if self.pending and not self.applying:
            self._next_layer()
            return
        self._apply_results()

    def _idle(self, message: str) -> None:
        self.progress.set_fraction(0.0)
        self.progress.set_text("Press Run to start")
        self._say(message)
        self.applying = self.continuing = False
        self._set_running(False)

    def apply_now(self) -> None:
        """The best image so far, at full size, as the layer: the worker finishes within one evaluation."""
        if self.worker is None:
            return
        self.applying = True
        self.trace("apply-pressed", pid=self.worker.pid)
        self.worker.send("finish")
        self.progress.set_text("applying the current image…")
        self._set_running(True)

    def full_size(self) -> None:
        """Continue the best image so far to the layer's own size, then add it (one undo step);
        Stop during it still leaves the image untouched. Layers still to come run at their own size."""
        if self.worker is None or self.applying or self.continuing or not self._below_full():
            return
        self.continuing = True
        self.base_request["options"] = {**self.base_request["options"], "size": 0}
        self.trace("full-size-pressed", pid=self.worker.pid)
        self.worker.send("full_size")
        self.progress.set_text("continuing at the layer's own size…")
        self._set_running(True)

    def _apply_results(self) -> None:
        """Add the layers (one undo group), then close with SUCCESS."""
        try:
            added = add_result_layers(self.image, self.results, self.name, cut_out(self.config, self.slots))
        except Exception as exc:  # the image stays as it was (add_result_layers removes partial results)
            self._idle(f"could not add the result: {exc}")
            return
        log("added " + ", ".join(repr(layer.get_name()) for layer in added))
        self.trace("applied", layers=[layer.get_name() for layer in added], early=self.applying)
        self.status = Gimp.PDBStatusType.SUCCESS
        self.close()

    def stop(self, quiet: bool = False) -> None:
        """End the run, keep the image untouched and the dialog open."""
        if self.worker is None:
            return
        worker, self.worker = self.worker, None
        self.run_id += 1
        self.trace("stop-pressed", pid=worker.pid)
        self.stoppers.append(stop_in_background(worker, self.trace))
        self.pending, self.results = [], []
        if not quiet:
            self._idle("Stopped: the image is unchanged")
            self.preview.show_source()

    # ---------------------------------------------------------------- the estimate

    def _query(self) -> dict:
        """The estimate question for the current settings (the first layer's size)."""
        layer = self.layers[0]
        weights = blend_weights(self.config)
        options = job_options(self.config)
        if len(weights) > 1:
            options["style_blend"] = weights
        self.estimate_id += 1
        size = {"width": layer.get_width(), "height": layer.get_height()}
        return {"id": self.estimate_id, **size, "styles": len(weights), "options": options}

    def _start_estimator(self) -> None:
        try:
            launch = launching.launch_for_gimp(Gimp.directory())
            self.estimator = WorkerProcess(launch, {"estimate": self._query()})
        except PlugInError as exc:
            self.estimate.set_text(f"No estimate: {exc}")
            return
        estimator = self.estimator
        pump(estimator, self._on_estimate, lambda: self._on_estimator_end(estimator))

    def _on_setting_changed(self, config: GObject.Object, pspec: GObject.ParamSpec) -> None:
        if self.estimate_timer:
            GLib.source_remove(self.estimate_timer)
        self.estimate_timer = GLib.timeout_add(ESTIMATE_DELAY_MS, self._ask_estimate)

    def _ask_estimate(self) -> bool:
        self.estimate_timer = 0
        if self.estimator is not None and self.estimator.alive():
            self.estimator.send_json({"estimate": self._query()})
        return False

    def _on_estimate(self, msg: dict) -> None:
        answer = msg.get("estimate")
        if isinstance(answer, dict):
            self.estimate_ready = True
        if isinstance(answer, dict) and answer.get("id") == self.estimate_id:
            if "error" in answer:
                self.estimate.set_text(f"No estimate: {answer['error']}")
                return
            last = (answer.get("scales") or [{}])[-1]
            layers = f" per layer ({len(self.layers)} layers)" if len(self.layers) > 1 else ""
            device = answer.get("device_label") or answer.get("device")
            self.estimate.set_text(
                f"Estimated time: {answer.get('duration')}{layers} for {last.get('width')}×{last.get('height')} "
                f"on {device}"
            )
            self.trace("estimate", seconds=answer.get("seconds"), id=answer.get("id"), device_label=device)
            if self.config.get_property("device") == "auto":  # the Device list names what Automatic runs on
                shown = relabel_automatic(self.dialog.get_widget("device", GObject.TYPE_NONE), automatic_label(answer))
                self.trace("automatic-device", shown=shown)
        elif msg.get("event") == "status" and msg.get("message"):
            self.estimate.set_text(f"Estimated time: {msg['message']}…")

    def _on_estimator_end(self, estimator: WorkerProcess) -> None:
        if estimator is not self.estimator:
            return
        try:
            estimator.outcome()
        except (Cancelled, PlugInError) as exc:
            if not isinstance(exc, Cancelled):
                self.estimate.set_text(f"No estimate: {exc}")


def drop_down_choices(dialog: GimpUi.ProcedureDialog, procedure: Gimp.Procedure) -> None:
    """Every choice argument as a drop-down list, as GIMP 3.0 draws them by default. GIMP 3.2 draws
    a choice of few options as a column of radio buttons instead, which made the live dialog
    850 px tall (taller than a 1366×768 laptop's screen, its Run button out of reach)."""
    for spec in procedure.get_arguments():
        if isinstance(spec, Gimp.ParamChoice):
            dialog.get_widget(spec.name, Gtk.ComboBox.__gtype__)


def ask(procedure: Gimp.Procedure, config: Gimp.ProcedureConfig, title: str) -> bool:
    """A plain modal dialog (one widget per argument, OK/Cancel) for procedures without a live view."""
    GimpUi.init(procedure.get_name())
    dialog = GimpUi.ProcedureDialog.new(procedure, config, title)
    dialog.get_spin_scale("strength", 1.0)
    drop_down_choices(dialog, procedure)
    dialog.fill(None)
    accepted = dialog.run()
    dialog.destroy()
    return accepted


def run_dialog(
    procedure: Gimp.Procedure, config: Gimp.ProcedureConfig, image: Gimp.Image, layers: list[Gimp.Layer]
) -> Gimp.PDBStatusType:
    """Show the live dialog until a result is applied (SUCCESS) or it is closed (CANCEL)."""
    return LiveDialog(procedure, config, image, layers).run()
