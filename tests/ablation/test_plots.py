"""The ablation's plots: the learning-curve points taken from a summary, and which figures are drawn."""

from PIL import Image

from arniqa.ablation.config import AblationConfig
from arniqa.ablation.plots import curve_points, plot_curves, plot_losses


def run(variant, seed, step, srcc):
    return {"variant": variant, "seed": seed, "stage": "x", "step": step, "srcc": srcc}


def summary(runs):
    return {"benchmarks": {"synthetic": {"runs": runs}}}


def test_curve_points_by_variant_seed_and_step():
    runs = [run("a", 0, 0, 0.1), run("a", 0, 5, 0.3), run("a", 1, 5, 0.4), run("b", 0, None, 0.9), run("b", 0, 10, 0.5)]
    assert curve_points(summary(runs), "synthetic") == {"a": {0: {0: 0.1, 5: 0.3}, 1: {5: 0.4}}, "b": {0: {10: 0.5}}}


def test_figures_are_drawn_only_with_their_data(tmp_path):
    config = AblationConfig(seeds=[0, 1], variants={"a": {"backbone": "resnet50"}}, baseline="a")
    one_step = summary([run("a", 0, 10, 0.5), run("a", 1, 10, 0.6)])
    assert plot_curves(config, one_step, tmp_path) is None
    assert plot_curves(config, one_step, tmp_path, bench="other") is None
    assert not (tmp_path / "learning_curves.png").exists()
    assert plot_losses(config, tmp_path) is None  # no training log.csv
    log = tmp_path / "a" / "seed0" / "train" / "log.csv"
    log.parent.mkdir(parents=True)
    log.write_text("global_step,loss,samples_per_s\n" + "".join(f"{k},{3 - k / 10},4.0\n" for k in range(1, 11)))
    two_steps = summary([run("a", 0, 0, 0.2), run("a", 0, 10, 0.5), run("a", 1, 10, 0.6)])
    path, write = plot_curves(config, two_steps, tmp_path)
    assert path == tmp_path / "learning_curves.png" and not path.exists()  # drawn, written by the report
    write(path)
    assert Image.open(path).size == (810, 288)  # 9.0 x 3.2 inches at 90 dpi
    losses, write = plot_losses(config, tmp_path)
    write(losses)
    # one 3.2 x 2.8 panel: 2.8 * 90 is 251.99999999999997, which matplotlib 3.10 (the newest for Python 3.10)
    # truncates to 251 pixels and 3.11 rounds to 252
    assert losses == tmp_path / "loss_curves.png" and Image.open(losses).size in {(288, 251), (288, 252)}
