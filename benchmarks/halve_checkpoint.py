"""Make a checkpoint small enough to travel to a device machine (64 MiB): floating tensors as fp16, the
projector and regressor dropped (the quality features use neither). benchmarks/explain_session.sh restores it.

    python benchmarks/halve_checkpoint.py MODEL.safetensors OUT.safetensors
"""

import argparse
import json
import sys

from safetensors.torch import save_file

from arniqa.models.arniqa import rounded_fingerprints
from arniqa.models.checkpoint import arniqa_metadata, load_checkpoint
from arniqa.models.files import WeightsError, read_state_dict

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", help="an arniqa .safetensors checkpoint")
    parser.add_argument("target", help="the smaller .safetensors file to write")
    args = parser.parse_args()
    source, target = args.source, args.target
    try:
        meta = arniqa_metadata(source)
        # what a regressor fitted on this copy pairs with a bf16 copy through (arniqa.models.arniqa)
        meta["rounded_from"] = rounded_fingerprints(load_checkpoint(source)[0])
        state = {
            k: v.half() if v.is_floating_point() else v
            for k, v in read_state_dict(source).items()
            if not k.startswith(("projector.", "regressor.", "explainer."))
        }
    except (WeightsError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    meta["regressor"], meta["dtype"] = None, "float16"  # what save_checkpoint records of its stored tensors
    meta.pop("explainer", None)
    save_file(state, target, metadata={"arniqa": json.dumps(meta)})
    print(f"wrote {target}")
