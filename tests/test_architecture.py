import pytest

from nst_export.architecture import DEFAULT_LAYERS, full_plan, parse_layers, truncated_plan
from nst_export.errors import ExportError


def test_vgg19_has_sixteen_convs_and_five_pools():
    plan = full_plan("vgg19")
    assert sum(layer.kind == "conv" for layer in plan) == 16
    assert [layer.name for layer in plan if layer.kind == "pool"] == [f"pool{i}" for i in range(1, 6)]


def test_vgg16_has_no_fourth_conv_in_block_three():
    names = [layer.name for layer in full_plan("vgg16")]
    assert "relu3_3" in names and "relu3_4" not in names


def test_layers_come_back_in_network_order_without_duplicates():
    assert parse_layers("relu4_2,relu1_1,relu1_1", "vgg19") == ("relu1_1", "relu4_2")
    assert parse_layers(None, "vgg19") == DEFAULT_LAYERS


@pytest.mark.parametrize("spec", ["relu9_1", "conv1_1", "relu3_4x", ""])
def test_unknown_or_empty_layer_names_are_refused(spec):
    with pytest.raises(ExportError):
        parse_layers(spec, "vgg19")


def test_relu3_4_does_not_exist_in_vgg16():
    with pytest.raises(ExportError, match="relu3_4"):
        parse_layers("relu3_4", "vgg16")


def test_net_is_cut_after_the_deepest_tap():
    plan = truncated_plan("vgg19", ("relu1_1", "relu3_1"))
    assert plan[-1].name == "relu3_1"
    assert truncated_plan("vgg19", DEFAULT_LAYERS)[-1].name == "relu5_1"
