# Batch code for `gimp-console-3.x --batch-interpreter=python-fu-eval -b -` (runs inside GIMP).
#
# Reads a JSON spec from $NST_BATCH_SPEC, builds a scene, calls python-fu-nst-style-transfer
# and writes what happened to spec["result"] as JSON, with every layer's pixels (before and
# after) dumped as raw "R'G'B'A u8" files for the test to compare. It never raises and never
# calls sys.exit (either makes gimp-console exit 64 and hides the reason): failures go into the
# result's "exception".
import json
import os
import time
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

PROC = "python-fu-nst-style-transfer"


def describe(image, phase, out_dir):
    """Name, size, offsets and a pixel dump of every top-level layer."""
    infos = []
    for index, layer in enumerate(image.get_layers()):
        w, h = layer.get_width(), layer.get_height()
        path = os.path.join(out_dir, f"{phase}-{index}.rgba")
        data = layer.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, "R'G'B'A u8", Gegl.AbyssPolicy.CLAMP)
        with open(path, "wb") as f:
            f.write(bytes(data))
        _, ox, oy = layer.get_offsets()
        infos.append(
            {
                "name": layer.get_name(),
                "width": w,
                "height": h,
                "offsets": [ox, oy],
                "has_alpha": layer.has_alpha(),
                "has_mask": layer.get_mask() is not None,
                "visible": layer.get_visible(),
                "pixels": path,
                "children": [c.get_name() for c in layer.get_children()] if layer.is_group() else None,
            }
        )
    return infos


def handshake(out_dir, mine, theirs, timeout=300):
    """Tell the GUI driver we are ready (a file), then wait for its answer (another file)."""
    open(os.path.join(out_dir, mine), "w").close()
    deadline = time.monotonic() + timeout
    while not os.path.exists(os.path.join(out_dir, theirs)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {theirs} from the GUI driver")
        time.sleep(0.1)


def wait_for_layers(image, count, timeout=60):
    """GIMP handles a key press in its own process: wait until the image has count layers again."""
    deadline = time.monotonic() + timeout
    while len(image.get_layers()) != count and time.monotonic() < deadline:
        time.sleep(0.1)


def registration(name=PROC):
    proc = Gimp.get_pdb().lookup_procedure(name)
    if proc is None:
        return {"registered": False}
    choices = {}
    for spec in proc.get_arguments():
        if isinstance(spec, Gimp.ParamChoice):
            choice = Gimp.param_spec_choice_get_choice(spec)
            choices[spec.name] = {
                "nicks": list(choice.list_nicks()),
                "default": Gimp.param_spec_choice_get_default(spec),
            }
    return {
        "registered": True,
        "menu_paths": list(proc.get_menu_paths()),
        "menu_label": proc.get_menu_label(),
        "image_types": proc.get_image_types(),
        "sensitivity": int(proc.get_sensitivity_mask()),
        "sensitivity_drawable": int(Gimp.ProcedureSensitivityMask.DRAWABLE),
        "sensitivity_drawables": int(Gimp.ProcedureSensitivityMask.DRAWABLES),
        "arguments": [spec.name for spec in proc.get_arguments()],
        "choices": choices,
    }


def enable_undo(image):
    """Undo on (GIMP 3.0 starts a plug-in's image without it; 3.2 warns when it is on already)."""
    if not image.undo_is_enabled():
        image.undo_enable()


def build_scene(spec):
    """The content photo, plus the paintings as layers below it and saved selections (channels) when asked."""
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(spec["content"]))
    if spec.get("gui") == "undo" or spec.get("undo_after"):  # a loaded image starts with undo disabled
        enable_undo(image)
    photo = image.get_layers()[0]
    painting = None
    if spec.get("painting"):
        painting = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(spec["painting"]))
        painting.set_name("Painting")
        image.insert_layer(painting, None, len(image.get_layers()))
        if spec.get("painting_scale"):
            w, h = spec["painting_scale"]
            painting.scale(w, h, False)
        if spec.get("painting_offsets"):
            painting.set_offsets(*spec["painting_offsets"])
        if spec.get("painting_hole"):  # a transparent rectangle: the result must keep the alpha
            painting.add_alpha()
            image.select_rectangle(Gimp.ChannelOps.REPLACE, *spec["painting_hole"])
            painting.edit_clear()
            Gimp.Selection.none(image)
    layers = {"photo": photo, "painting": painting}
    if spec.get("painting2"):  # a second style layer, at the bottom
        second = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(spec["painting2"]))
        second.set_name("Painting 2")
        image.insert_layer(second, None, len(image.get_layers()))
        layers["painting2"] = second
    for name, rect in spec.get("channels", {}).items():  # saved selections: a rectangle each
        image.select_rectangle(Gimp.ChannelOps.REPLACE, *rect)
        channel = Gimp.Selection.save(image)
        channel.set_name(name)
        layers[name] = channel
    Gimp.Selection.none(image)
    if spec.get("selection"):
        image.select_rectangle(Gimp.ChannelOps.REPLACE, *spec["selection"])
        if spec.get("feather"):
            Gimp.Selection.feather(image, spec["feather"])
    return image, layers


def stylize(spec, result):
    image, targets = build_scene(spec)
    result["layers_before"] = describe(image, "before", spec["out_dir"])
    shown = spec.get("gui") in ("cancel", "undo") or spec.get("display")
    if shown:  # the GUI shows the image (progress bar, undo)
        Gimp.Display.new(image)
        Gimp.displays_flush()
    proc = Gimp.get_pdb().lookup_procedure(PROC)
    config = proc.create_config()
    # an interactive run shows the dialog, which starts from the last-used values, not these
    interactive = bool(spec.get("live"))
    mode = Gimp.RunMode.INTERACTIVE if interactive else Gimp.RunMode.NONINTERACTIVE
    config.set_property("run-mode", mode)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [targets[name] for name in spec.get("drawables", ["photo"])])
    for name, value in spec.get("args", {}).items():
        if name.startswith("style-file"):
            value = Gio.File.new_for_path(value) if value else None
        elif name.startswith("style-layer") or name.endswith("-channel"):
            value = targets[value] if value else None
        config.set_property(name, value)
    returned = proc.run(config)
    result["status"] = returned.index(0).value_nick
    result["message"] = returned.index(1) if returned.length() > 1 else None
    result["layers_after"] = describe(image, "after", spec["out_dir"])
    if spec.get("gui") == "undo" or spec.get("undo_after"):  # the GUI driver presses Ctrl+Z once
        handshake(spec["out_dir"], "ready-for-undo", "undone")
        wait_for_layers(image, len(result["layers_before"]))
        result["layers_undone"] = describe(image, "undone", spec["out_dir"])
    if spec.get("export"):
        result["exported"] = bool(
            Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(spec["export"]), None)
        )
    if not shown:  # GIMP keeps an image that has a display
        image.delete()


def frames(spec, result):
    """A 4-layer animation of the photo panning; the frames procedure over it (bottom layer = frame 1)."""
    width, height = spec["size"]
    image = Gimp.Image.new(width, height, Gimp.ImageBaseType.RGB)
    if spec.get("gui") == "undo":
        enable_undo(image)
    for t in range(spec["frames"]):
        layer = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(spec["content"]))
        image.insert_layer(layer, None, 0)  # GIMP 3.2 scales only a layer that is in an image
        layer.scale(width + 3 * spec["frames"], height, False)
        layer.set_offsets(-3 * t, 0)
        layer.set_name(f"Frame {t + 1} (100ms) (replace)")
    image.clean_all()
    result["layers_before"] = describe(image, "before", spec["out_dir"])
    if spec.get("gui") == "undo":
        Gimp.Display.new(image)
        Gimp.displays_flush()
    proc = Gimp.get_pdb().lookup_procedure(PROC + "-frames")
    config = proc.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    for name, value in spec.get("args", {}).items():
        config.set_property(name, Gio.File.new_for_path(value) if name == "style-file" else value)
    returned = proc.run(config)
    result["status"] = returned.index(0).value_nick
    result["message"] = returned.index(1) if returned.length() > 1 else None
    result["layers_after"] = describe(image, "after", spec["out_dir"])
    group = image.get_layers()[0]
    if group.is_group():
        result["group_frames"] = [
            describe_one(layer, f"frame-{i}", spec["out_dir"]) for i, layer in enumerate(group.get_children())
        ]
    if spec.get("gui") == "undo":
        handshake(spec["out_dir"], "ready-for-undo", "undone")
        result["layers_undone"] = describe(image, "undone", spec["out_dir"])
    else:
        image.delete()


def describe_one(layer, name, out_dir):
    w, h = layer.get_width(), layer.get_height()
    path = os.path.join(out_dir, f"{name}.rgba")
    data = layer.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, "R'G'B'A u8", Gegl.AbyssPolicy.CLAMP)
    with open(path, "wb") as f:
        f.write(bytes(data))
    return {"name": layer.get_name(), "width": w, "height": h, "pixels": path}


def main():
    with open(os.environ["NST_BATCH_SPEC"], encoding="utf-8") as f:
        spec = json.load(f)
    result = {}
    try:
        if spec["action"] == "registration":
            result.update(registration(spec.get("proc", PROC)))
        elif spec["action"] == "frames":
            frames(spec, result)
        else:
            stylize(spec, result)
    except Exception:
        result["exception"] = traceback.format_exc()
    with open(spec["result"], "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)


main()
