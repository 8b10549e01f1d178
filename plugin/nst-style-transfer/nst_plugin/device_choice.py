"""The Device list's Automatic entry names the device ``auto`` runs on here (the worker's estimate says)."""

from __future__ import annotations

import gi

gi.require_version("Gtk", "3.0")
from gi.repository import Gtk  # noqa: E402

AUTO = "auto"
AUTOMATIC = "Automatic"


def automatic_label(answer: dict) -> str:
    """'Automatic (CPU, OpenVINO bf16 with an fp32 finish)' from an estimate reply asked with device
    auto (its ``device_label``, else its ``device``); plain 'Automatic' where it names none."""
    chosen = answer.get("device_label") or answer.get("device")
    return f"{AUTOMATIC} ({chosen})" if isinstance(chosen, str) and chosen else AUTOMATIC


def _combo_in(widget: Gtk.Widget) -> Gtk.ComboBox | None:
    if isinstance(widget, Gtk.ComboBox):
        return widget
    if isinstance(widget, Gtk.Container):
        for child in widget.get_children():
            if (found := _combo_in(child)) is not None:
                return found
    return None


def _column(combo: Gtk.ComboBox, name: str, default: int) -> int:
    try:
        return int(combo.get_property(name))
    except (TypeError, ValueError):
        return default


def relabel_automatic(widget: Gtk.Widget, label: str) -> str | None:
    """Set the Automatic row's label in the device list inside ``widget``; the label it then shows,
    read back from the list (None where the widget holds no such list)."""
    combo = _combo_in(widget)
    model = combo.get_model() if combo is not None else None
    if model is None:
        return None
    id_column = _column(combo, "id-column", 0)
    label_column = _column(combo, "label-column", 1)
    for row in model:
        if row[id_column] == AUTO:
            row[label_column] = label
            return row[label_column]
    return None
