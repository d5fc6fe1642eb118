"""A stand-in for ARNIQA where only a training run's bookkeeping is under test (a ResNet50 step costs
seconds on a CPU)."""

import torch


class TinyARNIQA(torch.nn.Module):
    """Forward returns (features, projections) as ARNIQA does; ``quality_features`` is what validation extracts."""

    config = {"backbone": "tiny", "backbone_options": {}}

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.proj = torch.nn.Linear(4, 4)

    def forward(self, x):
        f = torch.nn.functional.normalize(self.conv(x).mean((2, 3)), dim=1)
        return f, torch.nn.functional.normalize(self.proj(f), dim=1)

    def quality_features(self, full, half):
        return torch.cat([self(full)[0], self(half)[0]], dim=1)


def tiny_onnx(path):
    """An ``arniqa export``-style ONNX file of :class:`TinyARNIQA` with a KADID-10k regressor (8-d features):
    scoring at almost no cost. Returns the model, the regressor and the path."""
    from arniqa.inference.onnx_export import export_onnx
    from arniqa.models import Regressor

    torch.manual_seed(0)
    model = TinyARNIQA()
    model.backbone_name = "tiny"
    regressor = Regressor("kadid10k", in_features=8)
    with torch.no_grad():
        regressor.weight.copy_(torch.linspace(-1, 1, 8)[None])
        regressor.bias.fill_(3.0)
    return model, regressor, export_onnx(model, regressor, path, protocol="whole")
