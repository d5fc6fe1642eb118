"""Issue 29's measurements on a CPU, in one process: the explanation head's accuracy on held-out references,
then map localisation with a ridge regressor fitted on the same features (docs/explain.md, *Measurements*).

1. Labelled samples (arniqa.explain.samples) of the FIT photos and of the TEST photos (other seeds), their
   features under MODEL with the given protocol; the head fitted on FIT, its accuracy on TEST.
2. A regressor: ridge (alpha --alpha) from the features of FIT's single distortions to KADID-10k's mean MOS of
   their type and level (the synthetic benchmark's label); its SRCC on TEST's single distortions.
3. Map localisation (arniqa.explain.localise) on the first --loc-images TEST photos with that regressor.
The features and maps come from the engine ``arniqa explain fit`` and ``arniqa map`` take on the CPU (``--engine
auto``: ONNX Runtime); the figures in docs/explain.md were measured with ``--engine torch``. MODEL is a checkpoint
file (its encoder is saved and mapped). Writes JSON (default benchmarks/results/explain-cpu.json) and prints the
numbers.

    python benchmarks/explain_cpu.py --checkpoint MODEL --fit FOLDER --test FOLDER
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from arniqa.data.folders import list_images
from arniqa.data.synthetic import KADID_MEAN_MOS
from arniqa.evaluate.probe import fit as ridge_fit
from arniqa.explain.fit import accuracy, labelled_features
from arniqa.explain.localise import localisation
from arniqa.inference import Scorer, load, load_model
from arniqa.models.checkpoint import save_checkpoint
from arniqa.models.explain import add_to_checkpoint, fit_explainer
from arniqa.models.regressor import Regressor
from arniqa.utils.jsonfile import write_json
from arniqa.utils.runtime import describe


def mos_labels(data) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the single distortions of ``data`` and their KADID-10k mean MOS."""
    idx = [i for i, k in enumerate(data.kinds) if k == "single"]
    labels = []
    for i in idx:
        name, level = data.chains[i].split("@")
        labels.append(KADID_MEAN_MOS[name][int(level) - 1])
    return np.array(idx), np.array(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--fit", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--fit-images", type=int, default=0)
    parser.add_argument("--test-images", type=int, default=0)
    parser.add_argument("--protocol", default="whole")
    parser.add_argument("--size", default="192x144")
    parser.add_argument("--chains", type=int, default=10)
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--loc-images", type=int, default=6)
    parser.add_argument("--loc-size", default="384x288")
    parser.add_argument("--crop", type=int, default=96)
    parser.add_argument("--stride", type=int, default=48)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engine", default="auto", help="auto (as explain fit and map) | torch | onnxruntime")
    parser.add_argument("--save", type=Path, default=None, help="also write the model with regressor and head here")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "explain-cpu.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = tuple(int(v) for v in args.size.split("x"))
    scorer = load(args.checkpoint, device="cpu", engine=args.engine, protocol=args.protocol, workers=1)
    if scorer.model is None:  # ONNX Runtime on a cached export: the encoder, for the cache key, the save and the maps
        scorer.model = load_model(args.checkpoint)[0]
    fit_paths = list_images(args.fit)[: args.fit_images or None]
    test_paths = list_images(args.test)[: args.test_images or None]
    start = time.time()
    log = lambda what: lambda i, n: print(f"{what} {i}/{n} {time.time() - start:.0f} s", flush=True)  # noqa: E731
    train = labelled_features(scorer, fit_paths, size, args.chains, 0, args.cache, progress=log("fit"))
    held = labelled_features(scorer, test_paths, size, args.chains, 1, args.cache, progress=log("test"))
    head = fit_explainer(train.features, train.targets, train.severity)
    result = {
        "checkpoint": args.checkpoint,
        "protocol": args.protocol,
        "engine": scorer.engine.name,
        "size": list(size),
        "chains": args.chains,
        "fit_references": len(fit_paths),
        "test_references": len(test_paths),
        "fit_images": len(train.kinds),
        "test_images": len(held.kinds),
        "test_accuracy": accuracy(head, held),
        "fit_accuracy": accuracy(head, train),
    }
    idx, mos = mos_labels(train)
    coef, intercept = ridge_fit(train.features[idx].numpy(), mos, args.alpha)
    tidx, tmos = mos_labels(held)
    predicted = held.features[tidx].double().numpy() @ coef + intercept
    result["regressor"] = {
        "alpha": args.alpha,
        "fit_images": len(idx),
        "test_srcc": float(spearmanr(predicted, tmos)[0]),
    }
    print(json.dumps(result["test_accuracy"], indent=1), result["regressor"], flush=True)
    regressor = Regressor.from_numpy(coef, intercept, dataset="kadid10k")
    if args.save is not None:
        save_checkpoint(args.save, scorer.model, regressor, explainer_protocol=args.protocol)
        add_to_checkpoint(args.save, head, args.save, protocol=args.protocol, size=list(size))
    mapper = Scorer(scorer.model, regressor, protocol=args.protocol, engine=args.engine, workers=1)
    loc_size = tuple(int(v) for v in args.loc_size.split("x"))
    if args.loc_images:
        result["localisation"] = localisation(
            mapper, test_paths[: args.loc_images], loc_size, args.crop, args.stride, progress=log("localisation")
        )
        print(json.dumps(result["localisation"]["summary"], indent=1))
    result.update(
        {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seconds": time.time() - start,
            "machine": describe(),
        }
    )
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
