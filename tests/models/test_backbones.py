"""Backbones: parameter counts, SE placement, ResNet50 weight loading, near-identity SE init."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

from arniqa.models import WeightsError, create_backbone, load_resnet50_imagenet, near_identity_se_

# se-resnet50-and-sota.md section 0, 1.2 (published or derived counts, not from this code).
RESNET50 = 23_508_032
SE_RESNET50 = 26_039_024
SE_RESNET50_NO_BIAS = 26_022_976
SE_PER_STAGE = {1: 25_392, 2: 133_248, 3: 792_960, 4: 1_579_392}


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts():
    assert n_params(create_backbone("resnet50")) == RESNET50
    assert n_params(create_backbone("se_resnet50")) == SE_RESNET50
    assert n_params(create_backbone("se_resnet50", se_bias=False)) == SE_RESNET50_NO_BIAS
    assert sum(SE_PER_STAGE.values()) == SE_RESNET50 - RESNET50


@pytest.mark.parametrize("stage", [1, 2, 3, 4])
def test_se_parameters_per_stage(stage):
    assert n_params(create_backbone("se_resnet50", se_stages=(stage,))) == RESNET50 + SE_PER_STAGE[stage]


def test_output_shape_and_bad_names():
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert create_backbone("se_resnet50").eval()(x).shape == (2, 2048)
    with pytest.raises(ValueError, match="unknown backbone"):
        create_backbone("resnet18")
    with pytest.raises(ValueError, match="se_stages"):
        create_backbone("se_resnet50", se_stages=(0, 5))


def _randomise(module: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=g))


def test_se_sits_after_bn3_before_the_add():
    """Recompute one SE bottleneck by hand in the documented order and compare."""
    net = create_backbone("se_resnet50").eval()
    block = net.layer2[0]  # has a downsample branch and stride 2
    _randomise(block, 0)
    x = torch.rand(2, 256, 16, 16)
    with torch.no_grad():
        y = block(x)
        u = F.relu(block.bn1(block.conv1(x)))
        u = F.relu(block.bn2(block.conv2(u)))
        u = block.bn3(block.conv3(u))
        z = u.mean(dim=(2, 3))  # squeeze
        w1, b1 = block.se.fc1.weight.flatten(1), block.se.fc1.bias
        w2, b2 = block.se.fc2.weight.flatten(1), block.se.fc2.bias
        s = torch.sigmoid(F.relu(z @ w1.T + b1) @ w2.T + b2)  # excitation
        expected = F.relu(u * s[:, :, None, None] + block.downsample(x))
    assert w1.shape == (32, 512) and w2.shape == (512, 32)  # reduction 16
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)


def test_se_stages_leave_other_stages_plain():
    net = create_backbone("se_resnet50", se_stages=(3, 4), se_bias=False)
    for stage, has_se in [(1, False), (2, False), (3, True), (4, True)]:
        for block in getattr(net, f"layer{stage}"):
            assert (sum(p.numel() for p in block.se.parameters()) > 0) == has_se
            if has_se:
                assert block.se.fc1.bias is None and block.se.fc2.bias is None


def _features(backbone, x):
    with torch.no_grad():
        return backbone.eval()(x)


def _tv_features(tv, x):
    trunk = nn.Sequential(*list(tv.children())[:-1]).eval()
    with torch.no_grad():
        return trunk(x).flatten(1)


def test_near_identity_se_reproduces_resnet50(tv_resnet50, tv_file):
    """With ResNet50 weights loaded and near-identity SE, SE-ResNet50 computes ResNet50.

    Tolerance: 1e-6 relative to the feature scale (eval mode); the scheme is exact in floating point
    (x2 then x0.5), so in practice the outputs are bit-identical.
    """
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    reference = _tv_features(tv_resnet50, x)
    scale = reference.abs().max()
    assert scale > 0.1
    plain = load_resnet50_imagenet(create_backbone("resnet50"), tv_file)
    torch.testing.assert_close(_features(plain, x), reference, rtol=0, atol=1e-6 * scale)
    for options in (dict(), dict(se_bias=False), dict(se_stages=(2, 4))):
        se = load_resnet50_imagenet(create_backbone("se_resnet50", **options), tv_file)
        torch.testing.assert_close(_features(se, x), reference, rtol=0, atol=1e-6 * scale, msg=str(options))


def test_near_identity_also_holds_in_train_mode(tv_file):
    x = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    plain = load_resnet50_imagenet(create_backbone("resnet50"), tv_file).train()
    se = load_resnet50_imagenet(create_backbone("se_resnet50"), tv_file).train()
    with torch.no_grad():
        a, b = plain(x), se(x)
    torch.testing.assert_close(b, a, rtol=0, atol=1e-6 * a.abs().max())


def test_random_se_init_changes_the_function_but_keeps_loaded_tensors(tv_resnet50, tv_state, tv_file):
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    se = load_resnet50_imagenet(create_backbone("se_resnet50"), tv_file, se_init="random")
    reference = _tv_features(tv_resnet50, x)
    assert (_features(se, x) - reference).abs().max() > 1e-3 * reference.abs().max()
    state = se.state_dict()
    for key, value in tv_state.items():
        if not key.startswith("fc."):
            assert torch.equal(state[key], value), key
    # Near-identity: exactly the documented change, bn3 doubled, fc2 zero, fc1 untouched by the scheme.
    fc1 = se.layer1[0].se.fc1.weight.clone()
    near_identity_se_(se)
    assert torch.equal(se.layer1[0].bn3.weight, 2 * tv_state["layer1.0.bn3.weight"])
    assert torch.equal(se.layer4[2].bn3.bias, 2 * tv_state["layer4.2.bn3.bias"])
    assert not se.layer3[1].se.fc2.weight.any() and not se.layer3[1].se.fc2.bias.any()
    assert torch.equal(se.layer1[0].se.fc1.weight, fc1)
    assert torch.equal(se.layer1[0].bn2.weight, tv_state["layer1.0.bn2.weight"])


def test_loads_wrapped_prefixed_and_safetensors_files(tmp_path, tv_state):
    """timm/torchvision names under a ``state_dict`` wrapper, a ``module.`` prefix, or in safetensors."""
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in tv_state.items()}}, wrapped)
    st = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in tv_state.items() if not k.startswith("fc.")}, str(st))
    for path in (wrapped, st):
        loaded = load_resnet50_imagenet(create_backbone("resnet50"), path).state_dict()
        assert loaded.keys() == tv_state.keys() - {"fc.weight", "fc.bias"}
        assert all(torch.equal(loaded[k], tv_state[k]) for k in loaded)


def test_bad_imagenet_files(tmp_path, tv_state):
    plain, se = create_backbone("resnet50"), create_backbone("se_resnet50")
    with pytest.raises(WeightsError, match="no such weight file"):
        load_resnet50_imagenet(plain, tmp_path / "absent.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match="junk.pth"):
        load_resnet50_imagenet(plain, junk)
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in tv_state.items() if not k.startswith("layer4.")}, partial)
    with pytest.raises(
        WeightsError, match=r"partial.pth: not ResNet50 weights for this backbone; missing \d+ keys: layer4\.\S+, "
    ):
        load_resnet50_imagenet(se, partial)
    extra = tmp_path / "extra.pth"
    torch.save({**tv_state, "head.weight": torch.zeros(3)}, extra)
    with pytest.raises(
        WeightsError, match=r"extra.pth: not ResNet50 weights for this backbone; unexpected 1 key: head\.weight$"
    ):
        load_resnet50_imagenet(plain, extra)
    shapes = tmp_path / "shapes.pth"
    torch.save({**tv_state, "conv1.weight": torch.zeros(64, 3, 3, 3)}, shapes)
    with pytest.raises(WeightsError) as e:
        load_resnet50_imagenet(plain, shapes)
    assert str(e.value) == (
        f"{shapes}: wrong tensor shapes: conv1.weight (64, 3, 3, 3) != (64, 3, 7, 7); give ResNet50's ImageNet "
        "weights (torchvision's resnet50-0676ba61.pth)"
    )
    with pytest.raises(ValueError, match="se_init"):
        load_resnet50_imagenet(plain, extra, se_init="zeros")
