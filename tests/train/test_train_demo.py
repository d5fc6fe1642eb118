import pytest

from arniqa.demo import WARNING, run_demo, sample_photos


def test_sample_photos_ship_with_the_dependencies(tmp_path):
    paths = sample_photos(tmp_path)
    names = {p.stem for p in paths}
    assert {"astronaut", "coffee", "chelsea", "rocket", "china", "flower"} <= names
    assert paths == sorted(paths) and all(p.stat().st_size > 10_000 for p in paths)


@pytest.mark.slow
def test_demo_runs_every_stage(tmp_path):
    report = run_demo(tmp_path / "demo", steps=1, crop_size=32, synthetic_size=(48, 32), types=("gaublur",),
                      progress=False, log=lambda *_: None)  # fmt: skip
    text = report.read_text()
    assert WARNING in text and "SRCC" in text and "report.png" in text
    assert (tmp_path / "demo" / "report.png").stat().st_size > 1000
    assert (tmp_path / "demo" / "run" / "model.safetensors").exists()
    assert text.count("| china") == 3 and text.count("| flower") == 3  # pristine + 2 degraded each
