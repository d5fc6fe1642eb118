"""Scoring on a CUDA device gives the CPU's scores (skipped without a GPU; the GPU session runs it)."""

import pytest
import torch

from arniqa.inference import load

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("protocol", ["crops", "whole", "pyiqa"])
@pytest.mark.parametrize("precision, tolerance", [("fp32", 2e-3), ("bf16", 3e-2)])
def test_cuda_scores_match_the_cpu(published, photos, protocol, precision, tolerance, record_property):
    # fp32 on CUDA convolves in TF32 by default (PyTorch's cuDNN setting), hence more than float rounding.
    d, _, _ = published
    cpu = load("arniqa-kadid10k", weights_dir=d, device="cpu", engine="torch", protocol=protocol).score(photos)
    gpu = load("arniqa-kadid10k", weights_dir=d, device="cuda", protocol=protocol, precision=precision).score(photos)
    deviation = float((gpu.scores - cpu.scores).abs().max())
    record_property("max_abs_score_difference", deviation)
    assert deviation < tolerance
    assert torch.equal(gpu.scores.argsort(), cpu.scores.argsort()) or deviation < 1e-3  # same ranking unless a tie


def test_cuda_batches_equal_single_images(published, photos):
    d, _, _ = published
    scorer = load("arniqa-kadid10k", weights_dir=d, device="cuda", protocol="crops", batch_size=4)
    together = scorer.score(photos).scores
    alone = torch.cat([scorer.score(p).scores for p in photos])
    assert (together - alone).abs().max() < 1e-4


@pytest.mark.parametrize("engine", ["torch", "onnxruntime"])
def test_cuda_tensors_score_on_a_cpu_engine_alone_or_beside_files(published, photos, engine):
    """A CUDA tensor given to a CPU scorer: ONNX Runtime's input conversion raised TypeError (a traceback), and
    beside a decoded file torch.cat failed, so each image was retried alone. Reference: the CPU tensor's score."""
    from PIL import Image
    from torchvision.transforms.functional import pil_to_tensor

    d, _, _ = published
    scorer = load("arniqa-kadid10k", weights_dir=d, device="cpu", engine=engine, protocol="whole")
    image = pil_to_tensor(Image.open(photos[0]).convert("RGB")).float() / 255
    expected = scorer.score([image, photos[1]]).scores
    got = scorer.score([image.cuda(), photos[1]]).scores  # score() raises the first image's error
    assert torch.allclose(got, expected, atol=1e-4, rtol=0)
    assert torch.allclose(scorer.score(image.cuda()).scores, expected[:1], atol=1e-4, rtol=0)


def test_calling_a_model_on_cuda_gives_its_scores_on_cuda_as_pyiqa(published, photos):
    """pyiqa's metric(x) returns the scores on the metric's device; model(x) gave CPU tensors."""
    d, _, _ = published
    model = load("arniqa-kadid10k", weights_dir=d, device="cuda", protocol="whole")
    got = model(photos[0])
    assert got.device.type == "cuda" and torch.equal(got.cpu(), model.score(photos[0]).scores)
