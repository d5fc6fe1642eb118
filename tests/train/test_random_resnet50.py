"""model.init=random_resnet50: an SE-ResNet50 that starts as the random ResNet50 of the same seed."""

import torch

from arniqa.train import load_config
from arniqa.train.factory import build_model


def built(backbone, init, se_init="identity", seed=3):
    config = load_config(None, [f"model.backbone={backbone}", f"model.init={init}", f"model.se_init={se_init}"])
    torch.manual_seed(seed)
    model = build_model(config)
    return model, torch.get_rng_state()


def test_se_resnet50_starts_as_the_resnet50_of_the_same_seed():
    plain, rng_plain = built("resnet50", "random")
    se, rng_se = built("se_resnet50", "random_resnet50")
    same_plain, _ = built("resnet50", "random_resnet50")
    assert all(torch.equal(v, same_plain.state_dict()[k]) for k, v in plain.state_dict().items())
    assert torch.equal(rng_plain, rng_se)  # what the trainer draws next does not depend on the variant
    shared = {k: v for k, v in se.state_dict().items() if ".se." not in k}
    for key, value in shared.items():
        if "bn3" in key and key.endswith(("weight", "bias")):
            assert torch.equal(value, 2 * plain.state_dict()[key]), key  # doubled for the 0.5 gate
        else:
            assert torch.equal(value, plain.state_dict()[key]), key
    fc2 = [k for k in se.state_dict() if ".se.fc2." in k]
    assert fc2 and all(not se.state_dict()[k].any() for k in fc2)  # every gate is sigmoid(0) = 0.5
    x = torch.rand(3, 3, 48, 48)
    for mode in ("eval", "train"):
        getattr(plain, mode)(), getattr(se, mode)()
        with torch.no_grad():
            f_plain, p_plain = plain(x)
            f_se, p_se = se(x)
        torch.testing.assert_close(f_se, f_plain, rtol=0, atol=1e-6)
        torch.testing.assert_close(p_se, p_plain, rtol=0, atol=1e-6)


def test_se_init_random_keeps_timm_gates_and_plain_random_init_is_another_network():
    plain, _ = built("resnet50", "random")
    gated, _ = built("se_resnet50", "random_resnet50", se_init="random")
    state = gated.state_dict()
    fc2 = [k for k in state if ".se.fc2.weight" in k]
    assert fc2 and all(state[k].abs().sum() > 0 for k in fc2)  # timm's gates, not the 0.5 pass-through
    assert all(torch.equal(v, state[k]) for k, v in plain.state_dict().items())  # bn3 not doubled
    # timm zero-initialises every bn3 gamma, so at step 0 any SE gate multiplies a zero branch: the
    # same function still; the init=random SE-ResNet50 has other convolution weights altogether
    other, _ = built("se_resnet50", "random")
    x = torch.rand(2, 3, 48, 48)
    plain.eval(), other.eval()
    with torch.no_grad():
        assert (other(x)[0] - plain(x)[0]).abs().max() > 1e-3
