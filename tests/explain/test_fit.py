"""The explanation head's accuracy (arniqa.explain.fit), against counts written by hand."""

import warnings

import torch
from streams import stderr_writes

from arniqa.explain.fit import Labelled, accuracy
from arniqa.models.explain import LABELS, Explainer
from arniqa.utils.messages import held_warnings, show_warning


def _head_reading_dims() -> Explainer:
    """A head whose logit j is 10 x feature j, severity = feature 8."""
    head = Explainer(9)
    with torch.no_grad():
        head.group.weight.zero_()
        head.group.bias.zero_()
        head.group.weight[:, :8] = 10 * torch.eye(8)
        head.severity.weight.zero_()
        head.severity.weight[0, 8] = 1
        head.severity.bias.zero_()
    return head


def test_accuracy_counts_as_written_by_hand():
    blur, noise, none = LABELS.index("blur"), LABELS.index("noise"), LABELS.index("none")
    feats = torch.zeros(4, 9)
    feats[0, blur], feats[0, noise], feats[0, 8] = 1.0, 0.5, 3.0  # blur@3: top-1 right, severity exact
    feats[1, noise], feats[1, blur], feats[1, 8] = 1.0, 0.5, 1.0  # blur@3 read as noise, blur 2nd; severity off by 2
    feats[2, noise], feats[2, 8] = 1.0, 2.0  # chain blur+noise: top-1 in the chain
    feats[3, none] = 1.0  # pristine read as none
    data = Labelled(
        feats,
        torch.zeros(4, len(LABELS)),
        torch.tensor([3.0, 3.0, 2.0, 0.0]),
        ["single", "single", "chain", "pristine"],
        [{"blur"}, {"blur"}, {"blur", "noise"}, {"none"}],
    )
    result = accuracy(_head_reading_dims(), data)
    assert result["single"]["top1"] == 0.5 and result["single"]["top2"] == 1.0
    assert result["single"]["severity_within_1"] == 0.5 and result["single"]["top1_per_group"]["blur"] == 0.5
    assert result["chain"]["top1_in_chain"] == 1.0 and result["pristine"]["top1_none"] == 1.0
    assert result["chance_top1"] == 1 / 8


def test_a_damaged_cache_entry_is_computed_again_and_gives_the_clean_numbers(tmp_path):
    """A run killed while an entry was written left a torn file, and every rerun then stopped at it with
    torch's traceback until the file was found and deleted by hand. The warning is one line in one write (print
    wrote its newline apart)."""
    import numpy as np
    from PIL import Image
    from tiny_score import load

    from arniqa.explain.fit import labelled_features

    scorer = load(protocol="whole")
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"p{i}.png")
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(paths[-1])
    options = dict(size=(32, 24), chains=2, seed=0)
    clean = labelled_features(scorer, paths, **options)
    cache = tmp_path / "ca\nche"  # a newline in its name: the warning stays one line
    labelled_features(scorer, paths, cache=cache, **options)
    entries = sorted(cache.glob("*.pt"))
    assert len(entries) == 2 and not list(cache.glob(".*"))  # no temporary file left behind
    entries[0].write_bytes(entries[0].read_bytes()[:100])  # cut off mid-write
    with warnings.catch_warnings(), stderr_writes() as writes:
        warnings.showwarning = show_warning  # as the commands show warnings
        again = labelled_features(scorer, paths, cache=cache, **options)
    [line] = writes
    assert line.startswith(f"warning: {tmp_path}/ca\\x0ache/{entries[0].name}: damaged explain cache entry")
    assert line.count("\n") == 1 and line.endswith("; computing it again\n")
    assert torch.equal(again.features, clean.features) and again.chains == clean.chains
    with warnings.catch_warnings(), stderr_writes() as writes:
        warnings.showwarning = show_warning
        labelled_features(scorer, paths, cache=cache, **options)  # written whole again: read without a warning
    assert writes == []


def test_damaged_cache_entries_are_warnings_about_single_files(tmp_path, monkeypatch):
    """A cache folder of damaged entries (torn by a full disk, or written by another torch) printed a line each;
    they are warnings about single files now: the first 5 named, one line counting the rest."""
    from arniqa.explain.fit import _read_part

    monkeypatch.delenv("ARNIQA_WARNINGS", raising=False)
    files = [tmp_path / f"{i}.pt" for i in range(7)]
    for f in files:
        f.write_bytes(b"PK\x03\x04 torn")
    held_warnings()  # counted from zero
    with warnings.catch_warnings(), stderr_writes() as writes:
        warnings.showwarning = show_warning
        assert [_read_part(f) for f in files] == [None] * 7  # each to be computed again
    assert [w.split(": damaged explain cache entry (")[0] for w in writes] == [f"warning: {f}" for f in files[:5]]
    assert held_warnings() == [
        "warning: 2 more images with a damaged explain cache entry, each computed again (the first 5 are named "
        "above; ARNIQA_WARNINGS=all names every one)"
    ]


def test_an_entry_cached_before_the_samples_went_in_as_8_bit_images_is_not_reused(tmp_path):
    """The cache key did not change when the samples began to go to the scorer as 8-bit images (features up to
    4e-3 away from the float inputs before), so an entry of the old features was read back as if current. An entry
    under the old key (its formula written out here) is not read: the features are computed."""
    import hashlib
    import json

    import numpy as np
    from PIL import Image
    from tiny_score import load

    from arniqa.explain.fit import labelled_features
    from arniqa.models.arniqa import model_fingerprint

    scorer = load(protocol="whole")
    path = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(path)
    options = dict(size=(32, 24), chains=1, seed=0)
    clean = labelled_features(scorer, [path], **options)
    old = {"model": model_fingerprint(scorer.model), "path": str(path), "size": [32, 24], "chains": 1, "seed": 0}
    old |= {"protocol": "whole", "index": 1}
    name = hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:24]
    n = len(clean.kinds)
    stale = {"features": torch.zeros_like(clean.features), "targets": clean.targets, "severity": clean.severity}
    stale |= {"kinds": clean.kinds, "groups": [sorted(g) for g in clean.groups], "chains": clean.chains}
    (tmp_path / "cache").mkdir()
    torch.save(stale, tmp_path / "cache" / f"{name}.pt")
    assert n and labelled_features(scorer, [path], cache=tmp_path / "cache", **options).features.abs().sum() > 0


def test_a_pipe_planted_as_a_cache_entry_is_replaced_never_opened(tmp_path):
    """A FIFO under an entry's name was written into as an output the user named: the fit waited for a reader
    forever. The cache's files are named by the fit, so one is replaced by the entry like a file."""
    import os
    import stat
    import threading

    import numpy as np
    from PIL import Image
    from tiny_score import load

    from arniqa.explain.fit import labelled_features

    scorer = load(protocol="whole")
    path = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(path)
    options = dict(size=(32, 24), chains=2, seed=0, cache=tmp_path / "cache")
    clean = labelled_features(scorer, [path], **options)
    (entry,) = (tmp_path / "cache").glob("*.pt")
    entry.unlink()
    os.mkfifo(entry)
    got = []
    fit = threading.Thread(target=lambda: got.append(labelled_features(scorer, [path], **options)), daemon=True)
    fit.start()
    fit.join(timeout=120)
    assert got, "the fit waits on the pipe"
    assert stat.S_ISREG(os.lstat(entry).st_mode) and torch.equal(got[0].features, clean.features)
    assert torch.equal(labelled_features(scorer, [path], **options).features, clean.features)  # read back


def test_the_first_reference_made_is_announced_and_timed_once(tmp_path):
    """`explain fit` said nothing of its cost: the hooks that let it say what it will compute and project the time
    are called once, for the first reference made here (not one read from the cache, not one that cannot be read)."""
    import numpy as np
    from PIL import Image
    from tiny_score import load

    from arniqa.explain.fit import labelled_features

    scorer = load(protocol="whole")
    paths = [tmp_path / "broken.png"]
    paths[0].write_text("not an image")
    for i in range(3):
        paths.append(tmp_path / f"p{i}.png")
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(paths[-1])
    cache = tmp_path / "cache"

    def run():
        calls = []
        labelled_features(
            scorer,
            paths,
            size=(32, 24),
            chains=0,
            cache=cache,
            starting=lambda: calls.append("starting"),
            first=lambda seconds, left: calls.append((seconds >= 0, left)),
        )
        return calls

    assert run() == ["starting", (True, 2)]  # the broken one is not made: p0 is first, p1 and p2 are left
    next(cache.glob("*.pt")).unlink()
    assert run() == ["starting", (True, 0)]  # one made again, none left
    assert run() == []  # all from the cache


def test_the_time_of_a_reference_made_by_workers_leaves_out_the_pools_start(tmp_path, monkeypatch):
    """With --workers the first reference's time began before the pool had started (spawned processes importing
    torch: 10 s here), so the projection of explain fit multiplied that start by the references left: 79 s
    projected for 29 s (7 references of 0.5 s features, 2 workers). Now it is the reference's features, or its
    samples' share of the workers when that is more: a pool that starts slowly (here: threads that give their
    first result after START seconds) is no part of it."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    from PIL import Image

    import arniqa.explain.fit as fit

    start, features = 6.0, 0.3

    class SlowStart(ThreadPoolExecutor):
        def __init__(self, workers, mp_context=None):
            super().__init__(workers)

        def map(self, *args):
            results = super().map(*args)

            def later():
                time.sleep(start)
                yield from results

            return later()

    class Scorer:  # features of 0.3 s a reference
        protocol, model = type("Protocol", (), {"name": "whole"})(), None

        def features(self, images):
            time.sleep(features)
            return torch.zeros(len(images), 1, 8)

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"p{i}.png")
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(paths[-1])
    monkeypatch.setattr(fit, "ProcessPoolExecutor", SlowStart)
    calls = []
    fit.labelled_features(Scorer(), paths, size=(32, 24), chains=0, workers=2, first=lambda *a: calls.append(a))
    [(seconds, left)] = calls
    assert left == 2 and features <= seconds < start


def test_features_are_those_score_gives_for_the_samples_png_files(tmp_path):
    """The samples went to the scorer as float tensors, whose half scale torch makes in float arithmetic, while
    `arniqa score` on the same 8-bit images makes it with PIL (up to 1/255 apart). Now each feature is the one
    score gives for the sample saved as a PNG file."""
    import numpy as np
    from PIL import Image
    from tiny_score import load

    from arniqa.data.pixels import tensor_to_pil
    from arniqa.explain.fit import labelled_features
    from arniqa.explain.samples import reference_samples

    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(photo)
    files = []
    for i, sample in enumerate(reference_samples(photo, 1, (32, 24), chains=2, seed=0)):
        files.append(tmp_path / f"s{i:03d}.png")
        tensor_to_pil(sample.image).save(files[-1])
    for protocol in ("whole", "crops"):
        scorer = load(protocol=protocol)
        fitted = labelled_features(scorer, [photo], size=(32, 24), chains=2, seed=0).features
        torch.testing.assert_close(fitted, scorer.features(files).mean(1), rtol=0, atol=1e-6)
