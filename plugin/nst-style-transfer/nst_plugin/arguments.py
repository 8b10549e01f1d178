"""The stylize procedure's PDB arguments, and the worker request built from their values.

Today's arguments keep their names, order and defaults; the optional second and third styles
are appended after them, so scripts written for the one-style procedure run unchanged.
Other procedures of the plug-in (frames, regions) declare the first style and the options with
:func:`add_style_arguments` (or everything with :func:`add_run_arguments`) and build their
requests with :func:`resolve_styles`, :func:`styles_request` and :func:`job_options`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GObject  # noqa: E402

from .errors import PlugInError  # noqa: E402
from .layers import inline_image  # noqa: E402
from .regions import add_region_arguments  # noqa: E402

QUALITIES = (("draft", "Draft"), ("normal", "Normal"), ("high", "High"))
PRESERVE_COLORS = (("none", "None"), ("luminance", "Luminance"), ("histogram", "Histogram"))
DEVICES = (
    ("auto", "Automatic"),  # the dialog adds what it runs on here, once the worker's estimate says
    ("cpu", "CPU"),
    ("cuda", "CUDA GPU"),
    ("openvino", "CPU through OpenVINO (bf16 with AMX)"),
    ("openvino-gpu", "Intel GPU through OpenVINO"),
)
EXTRA_STYLES = (2, 3)  # style-layer-N, style-file-N, style-N-weight
MAX_STYLE_WEIGHT = 10.0


def _choice(nick_label_pairs: tuple[tuple[str, str], ...]) -> Gimp.Choice:
    """A Gimp.Choice whose nicks are the protocol's option values."""
    choice = Gimp.Choice.new()
    for i, (nick, label) in enumerate(nick_label_pairs):
        choice.add(nick, i, label, label)
    return choice


# Labels with mnemonics unique in the dialog (GIMP warns about clashes with its own buttons).
STYLE_LABELS = {
    "": ("Style la_yer", "Style _file", None),
    "-2": ("Style _2 layer", "Style 2 _image file", "Style 2 _weight"),
    "-3": ("Style _3 layer", "Style 3 i_mage file", "Style 3 wei_ght"),
}


def _add_style(procedure: Gimp.Procedure, suffix: str, which: str) -> None:
    rw = GObject.ParamFlags.READWRITE
    layer_label, file_label, _ = STYLE_LABELS[suffix]
    procedure.add_layer_argument(f"style-layer{suffix}", layer_label, f"A layer (of any open image): {which}", True, rw)
    procedure.add_file_argument(
        f"style-file{suffix}",
        file_label,
        f"An image file, used when no style layer is given: {which}",
        Gimp.FileChooserAction.OPEN,
        True,
        None,
        rw,
    )


def add_style_arguments(procedure: Gimp.Procedure) -> None:
    """The first style and the run's options (every procedure of the plug-in takes these)."""
    rw = GObject.ParamFlags.READWRITE
    _add_style(procedure, "", "the style to paint in")
    procedure.add_double_argument("strength", "S_trength", "How strongly the style shows (0-1)", 0.0, 1.0, 0.5, rw)
    procedure.add_int_argument(
        "size", "Si_ze", "Longest side of the computation in pixels (0 = the layer's own size)", 0, 8192, 512, rw
    )
    procedure.add_choice_argument(
        "quality", "_Quality", "More iterations and scales are slower", _choice(QUALITIES), "normal", rw
    )
    procedure.add_choice_argument(
        "preserve-colors", "_Preserve colors", "Keep the content's colors", _choice(PRESERVE_COLORS), "none", rw
    )
    procedure.add_int_argument("seed", "S_eed", "Random seed", 0, 2**31 - 1, 0, rw)
    procedure.add_choice_argument("device", "_Device", "Where the computation runs", _choice(DEVICES), "auto", rw)


def add_run_arguments(procedure: Gimp.Procedure) -> None:
    """Every argument of a stylize run, in the PDB order scripts rely on."""
    rw = GObject.ParamFlags.READWRITE
    add_style_arguments(procedure)
    procedure.add_boolean_argument(
        "use-selection",
        "Limit to the selectio_n",
        "Show the result only inside the selection (as a layer mask)",
        True,
        rw,
    )
    for n in EXTRA_STYLES:  # appended after today's arguments: old argument lists keep working
        _add_style(procedure, f"-{n}", f"an optional style number {n}")
        procedure.add_double_argument(
            f"style-{n}-weight",
            STYLE_LABELS[f"-{n}"][2],
            f"Style {n}'s share relative to the first style's 1.0 (0 = unused)",
            0.0,
            MAX_STYLE_WEIGHT,
            1.0,
            rw,
        )
    add_region_arguments(procedure)  # "Outside the selection" and the channels of styles 2 and 3
    add_memory_argument(procedure)


MAX_MEMORY_MIB = 1 << 20  # 1 TiB: the field's upper end; the worker caps a budget at the machine's memory


def add_memory_argument(procedure: Gimp.Procedure) -> None:
    """The run's memory budget (the CLI's --max-memory), appended last so argument lists written
    before it keep working. Large layers at Size 0 are computed in exact tiles that fit it."""
    procedure.add_int_argument(
        "max-memory",
        "Memory _budget (MiB)",
        "Most memory the run may use, in MiB; larger layers are computed in tiles (0 = a safe share of what is free)",
        0,
        MAX_MEMORY_MIB,
        0,
        GObject.ParamFlags.READWRITE,
    )


@dataclass
class StyleChoice:
    """One style as the worker gets it (a protocol IMAGE), its name for the layer, its share."""

    image: dict
    title: str
    weight: float
    slot: int = 1  # 1, 2 or 3: which style argument it came from (regions place styles by slot)


def style_title(path: str) -> str:
    """'starry_night.jpg' -> 'Starry Night': the result layer is named after the style."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return " ".join(stem.replace("_", " ").replace("-", " ").split()).title() or stem


def _style(config: Gimp.ProcedureConfig, suffix: str) -> tuple[dict, str] | None:
    """(protocol IMAGE, title) of one style slot, None when the slot is empty."""
    layer = config.get_property(f"style-layer{suffix}")
    if layer is not None:
        return inline_image(layer), layer.get_name()
    style_file = config.get_property(f"style-file{suffix}")
    path = style_file.get_path() if style_file is not None else None
    if not path:
        if style_file is not None and style_file.get_uri():
            raise PlugInError(f"the style file must be a local file: {style_file.get_uri()}", "CALLING_ERROR")
        return None
    return {"path": os.path.abspath(path)}, style_title(path)


def has_style(config: Gimp.ProcedureConfig, n: int = 1) -> bool:
    """Whether style slot n exists in this procedure and names a layer or a file (no pixels read)."""
    suffix = "" if n == 1 else f"-{n}"
    if config.find_property(f"style-layer{suffix}") is None:
        return False
    style_file = config.get_property(f"style-file{suffix}")
    return config.get_property(f"style-layer{suffix}") is not None or bool(style_file and style_file.get_uri())


def blend_weights(config: Gimp.ProcedureConfig) -> list[float]:
    """The weights of the styles a run would use, first style included (no pixels read)."""
    extra = [float(config.get_property(f"style-{n}-weight")) for n in EXTRA_STYLES if has_style(config, n)]
    return [1.0, *(w for w in extra if w > 0)]


def resolve_styles(config: Gimp.ProcedureConfig) -> list[StyleChoice]:
    """The first style (required) and the optional second and third ones with a weight above 0."""
    first = _style(config, "")
    if first is None:
        raise PlugInError("no style given: choose a style layer or a style file", "CALLING_ERROR")
    styles = [StyleChoice(first[0], first[1], 1.0, 1)]
    for n in EXTRA_STYLES:
        if not has_style(config, n):
            continue
        weight = float(config.get_property(f"style-{n}-weight"))
        if weight <= 0:
            continue
        extra = _style(config, f"-{n}")
        if extra is not None:
            styles.append(StyleChoice(extra[0], extra[1], weight, n))
    return styles


def styles_request(styles: list[StyleChoice]) -> dict:
    """The request's "styles" (and "style_blend" when there are several)."""
    request: dict = {"styles": [s.image for s in styles]}
    if len(styles) > 1:
        request["style_blend"] = [s.weight for s in styles]
    return request


def result_name(styles: list[StyleChoice]) -> str:
    """'Starry Night — style', or 'Starry Night + The Scream — style' for a blend."""
    return " + ".join(s.title for s in styles) + " — style"


def job_options(config: Gimp.ProcedureConfig) -> dict:
    """The protocol "options" object from the procedure's arguments."""
    options = {
        "strength": config.get_property("strength"),
        "size": config.get_property("size"),
        "quality": config.get_property("quality"),
        "preserve_color": config.get_property("preserve-colors"),
        "seed": config.get_property("seed"),
        "device": config.get_property("device"),
    }
    if config.find_property("max-memory") is not None and config.get_property("max-memory") > 0:
        options["max_memory"] = f"{config.get_property('max-memory')}M"
    return options
