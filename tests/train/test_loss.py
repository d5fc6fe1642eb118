import math

import pytest
import torch

from arniqa.train.loss import NTXentLoss, nt_xent


def loop_reference(a: torch.Tensor, b: torch.Tensor, tau: float) -> float:
    """The formula written out: Z = [a; b] normalised, positive of row k is row k +/- M, mean over rows."""
    z = [[t / math.sqrt(sum(u * u for u in v)) for t in v] for v in torch.cat([a, b]).double().tolist()]
    m = a.shape[0]
    total = 0.0
    for i in range(2 * m):
        pos = i + m if i < m else i - m
        sims = [sum(p * q for p, q in zip(z[i], z[j])) / tau for j in range(2 * m)]
        denom = sum(math.exp(sims[j]) for j in range(2 * m) if j != i)
        total += -math.log(math.exp(sims[pos]) / denom)
    return total / (2 * m)


def embeddings(n: int, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2 * n, d, generator=g), torch.randn(2 * n, d, generator=g)


@pytest.mark.parametrize("n, tau", [(1, 0.1), (3, 0.1), (4, 0.5)])
def test_matches_a_direct_loop(n, tau):
    a, b = embeddings(n, seed=n)
    assert nt_xent(a, b, tau).item() == pytest.approx(loop_reference(a, b, tau), rel=1e-5)
    assert NTXentLoss(tau)(a, b).item() == pytest.approx(loop_reference(a, b, tau), rel=1e-5)


def test_consistent_row_permutation_and_swapping_a_b_leave_it_unchanged():
    a, b = embeddings(4)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(1))
    assert nt_xent(a[perm], b[perm]).item() == pytest.approx(nt_xent(a, b).item(), rel=1e-6)
    assert nt_xent(b, a).item() == pytest.approx(nt_xent(a, b).item(), rel=1e-6)
    # Permuting only one side breaks the pairs and changes the loss.
    assert nt_xent(a, b[perm]).item() != pytest.approx(nt_xent(a, b).item(), rel=1e-3)


def test_scale_invariant_rows():
    a, b = embeddings(3)
    scales = torch.rand(6, 1) * 10 + 0.1
    assert nt_xent(a * scales, b).item() == pytest.approx(nt_xent(a, b).item(), rel=1e-5)


def test_minimal_when_positives_coincide():
    a, b = embeddings(3)
    base = nt_xent(a, b).item()
    aligned = nt_xent(a, a.clone()).item()
    assert aligned < base
    # Moving a positive pair apart raises the loss.
    moved = a.clone()
    moved[0] = -moved[0]
    assert nt_xent(a, moved).item() > aligned


def test_closed_form_with_orthogonal_pairs():
    # 4 rows, d = 4: pairs coincide, other rows orthogonal: each row's loss is -log(e^{1/t}/(e^{1/t} + 2)).
    eye = torch.eye(4)
    a, b = eye[:2], eye[:2].clone()
    tau = 0.5
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2))
    assert nt_xent(a, b, tau).item() == pytest.approx(expected, rel=1e-6)


def test_hard_negative_is_in_the_denominator():
    # Only the other-scale copy of the same image (row k + N of a) differs between the two cases.
    a, b = embeddings(2, d=16)
    far = a.clone()
    far[2] = -a[0]  # A_half[0] far from A_full[0]
    near = a.clone()
    near[2] = a[0]  # A_half[0] equal to A_full[0]: a strong hard negative for row 0
    assert nt_xent(near, b).item() > nt_xent(far, b).item()


def test_process_slices_average_to_the_global_loss_and_gradient():
    """What multi-process training computes: each process takes its rows against the gathered batch."""
    a, b = embeddings(4)
    a.requires_grad_(True)
    b.requires_grad_(True)
    full = nt_xent(a, b)
    (grad_a, grad_b) = torch.autograd.grad(full, (a, b))
    # Two "processes", each holding 4 consecutive rows of a and b.
    parts = [nt_xent(a[r * 4 : (r + 1) * 4], b[r * 4 : (r + 1) * 4], all_a=a, all_b=b, offset=4 * r) for r in range(2)]
    mean = (parts[0] + parts[1]) / 2
    assert mean.item() == pytest.approx(full.item(), rel=1e-6)
    ga, gb = torch.autograd.grad(mean, (a, b))
    torch.testing.assert_close(ga, grad_a)
    torch.testing.assert_close(gb, grad_b)


def test_bad_arguments():
    a, b = embeddings(2)
    with pytest.raises(ValueError, match="same shape"):
        nt_xent(a, b[:3])
    with pytest.raises(ValueError, match="both"):
        nt_xent(a, b, all_a=a)
    with pytest.raises(ValueError, match="fit"):
        nt_xent(a, b, all_a=a, all_b=b, offset=1)
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(0.0)


class BatchNormed(torch.nn.Module):
    """Conv -> BatchNorm -> pool -> projector, returning (f, g) like ARNIQA: its output depends on the batch."""

    def __init__(self):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.trunk = torch.nn.Sequential(
                torch.nn.Conv2d(3, 6, 3), torch.nn.BatchNorm2d(6), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
            )
            self.projector = torch.nn.Linear(6, 4)

    def forward(self, x):
        f = torch.nn.functional.normalize(self.trunk(x), dim=1)
        return f, self.projector(f)


def test_a_and_b_go_through_the_encoder_in_two_passes():
    """The reference encodes inputs_A = cat(A_full, A_half) and inputs_B = cat(B_full, B_half) in two separate
    forward passes, so BatchNorm takes its statistics over each 2B-crop pass, and A_k pairs with B_k."""
    from arniqa.train.loop import TwoPass, contrastive_loss

    model = BatchNormed().train()
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(1))  # B = 2: A_full, A_half, B_full, B_half
    loss, _ = contrastive_loss(TwoPass(model), x, temperature=0.1)
    with torch.no_grad():
        a, b = model(x[:4])[1], model(x[4:])[1]
        joint = model(x)[1]  # one pass over all 4B crops: other batch statistics
    assert loss.item() == pytest.approx(loop_reference(a, b, 0.1), rel=1e-5)
    assert loss.item() != pytest.approx(loop_reference(joint[:4], joint[4:], 0.1), rel=1e-3)
