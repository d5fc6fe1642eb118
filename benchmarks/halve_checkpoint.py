"""Make a checkpoint small enough to travel to a device machine (64 MiB): floating tensors as fp16, the
projector and regressor dropped (the quality features use neither). benchmarks/explain_session.sh restores it.

    python benchmarks/halve_checkpoint.py MODEL.safetensors OUT.safetensors
"""

import json
import sys

from safetensors.torch import save_file

from arniqa.models.checkpoint import arniqa_metadata
from arniqa.models.files import read_state_dict

if __name__ == "__main__":
    source, target = sys.argv[1:3]
    meta = arniqa_metadata(source)
    state = {
        k: v.half() if v.is_floating_point() else v
        for k, v in read_state_dict(source).items()
        if not k.startswith(("projector.", "regressor.", "explainer."))
    }
    meta["regressor"] = None
    meta.pop("explainer", None)
    save_file(state, target, metadata={"arniqa": json.dumps(meta)})
    print(f"wrote {target}")
