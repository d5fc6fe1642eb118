"""Where the time of one `arniqa explain fit` reference goes on this machine, and the way its features are
computed: before, the torch engine on float tensors; now the device's default engine (ONNX Runtime on a CPU)
on the 8-bit samples, as `arniqa score` computes them from PNG files.

For the first photo of PHOTOS: its samples made (explain/samples.py: the photo, 115 single distortions,
--chains chains), their features as explain fit computes them (Scorer.features on the samples, per
protocol and way; forward runs and views counted), the same number of images through `arniqa score`'s
path (PNG files, the device's default engine), and the head fitted on the features. The ways alternate
within each repeat; the table gives the median. Writes JSON (default benchmarks/results/explain-fit-cpu.json).

    python benchmarks/explain_fit.py --checkpoint MODEL --photos FOLDER --size 32x24 --chains 1 --images 24
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from arniqa.data.folders import list_images
from arniqa.data.pixels import tensor_to_pil
from arniqa.explain.fit import Labelled, _made
from arniqa.inference import load
from arniqa.models.explain import fit_explainer
from arniqa.utils.jsonfile import write_json
from arniqa.utils.runtime import describe


def counted(scorer) -> list[int]:
    """[forward runs, views] of ``scorer`` from now on."""
    calls = [0, 0]
    run = scorer.engine.run

    def wrapper(full, half, *rest):
        calls[0] += 1
        calls[1] += len(full) + len(half)
        return run(full, half, *rest)

    scorer.engine.run = wrapper
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--size", default="32x24")
    parser.add_argument("--chains", type=int, default=1)
    parser.add_argument("--protocols", default="crops,whole")
    parser.add_argument("--images", type=int, default=0, help="time the first N samples (0: all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "explain-fit-cpu.json")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    photo = list_images(args.photos)[0]
    start = time.perf_counter()
    part = _made(photo, 1, size, args.chains, 0)
    made = time.perf_counter() - start
    images = list(part["images"].float() / 255)
    n = args.images or len(images)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, image in enumerate(images[:n]):
            files.append(Path(tmp) / f"{i:04d}.png")
            tensor_to_pil(image).save(files[-1])
        for protocol in args.protocols.split(","):
            default = load(args.checkpoint, device="cpu", protocol=protocol)
            torch_engine = load(args.checkpoint, device="cpu", protocol=protocol, engine="torch")
            ways = {  # the scorer, and what it is given (made inside the timing)
                "before: torch, float tensors": (torch_engine, lambda: images[:n]),
                "default engine, float tensors": (default, lambda: images[:n]),
                "now: default engine, 8-bit": (default, lambda: [tensor_to_pil(x) for x in images[:n]]),
                "score: PNG files": (default, lambda: files),
            }
            counters = {id(scorer): counted(scorer) for scorer in (default, torch_engine)}
            times = {name: [] for name in ways}
            calls = {}
            for scorer in (default, torch_engine):
                scorer.features(images[:1])  # warm up
            for _ in range(args.repeats):
                for name, (scorer, inputs) in ways.items():
                    counter = counters[id(scorer)]
                    counter[:] = [0, 0]
                    t = time.perf_counter()
                    scorer.features(inputs())
                    times[name].append(time.perf_counter() - t)
                    calls[name] = list(counter)
            for name, (scorer, _) in ways.items():
                seconds = statistics.median(times[name])
                rows.append(
                    {
                        "protocol": protocol,
                        "way": name,
                        "engine": scorer.engine.name,
                        "images": n,
                        "forward_runs": calls[name][0],
                        "views": calls[name][1],
                        "seconds": seconds,
                        "ms_per_image": 1000 * seconds / n,
                        "all_seconds": times[name],
                    }
                )
                print(f"{protocol:6} {name:28} {rows[-1]['ms_per_image']:8.0f} ms/image  {calls[name][1]} views")
    scorer = load(args.checkpoint, device="cpu", protocol="whole")
    features = scorer.features(images).mean(1)
    data = Labelled(features, part["targets"], part["severity"], part["kinds"])
    start = time.perf_counter()
    fit_explainer(data.features, data.targets, data.severity)
    head = time.perf_counter() - start
    result = {
        "checkpoint": args.checkpoint,
        "photo": photo.name,
        "size": list(size),
        "chains": args.chains,
        "samples_per_reference": len(images),
        "samples_seconds": made,
        "head_fit_seconds_one_reference": head,
        "features": rows,
        "threads": torch.get_num_threads(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": describe(),
    }
    print(f"samples: {len(images)} in {made:.2f} s; head fit on them: {head:.2f} s")
    print("| protocol | way | engine | ms per image | views per image |")
    print("|---|---|---|---:|---:|")
    for r in rows:
        print(f"| {r['protocol']} | {r['way']} | {r['engine']} | {r['ms_per_image']:.0f} | {r['views'] // n} |")
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
