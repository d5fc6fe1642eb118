"""What runs the network for a :class:`~arniqa.inference.Scorer`: PyTorch, or ONNX Runtime on an exported file.

Both take batches of views, ``full`` (M,3,H,W) and ``half`` (M,3,h,w) in [0, 1], and return the raw
scores (M,) (NaN without a regressor) and, when asked, the (M, 4096) quality features. A failure of
the runtime (e.g. out of memory) is raised as RuntimeError, which the Scorer reports per image.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from ..models.arniqa import ARNIQA
from ..models.download import cache_dir
from ..models.regressor import Regressor
from .export import export_onnx, read_sidecar

ENGINES = ("torch", "onnxruntime")
PRECISIONS = ("fp32", "bf16", "fp16", "int8")  # bf16, fp16: torch autocast; int8: an ONNX Runtime file
ONNX_PRECISIONS = ("fp32", "int8")


class TorchEngine:
    """The PyTorch model, with optional autocast (``precision``) and channels_last."""

    name = "torch"

    def __init__(self, model: ARNIQA, regressor: Regressor | None, device: torch.device, precision: str = "fp32",
                 channels_last: bool = False) -> None:
        self.device, self.precision, self.channels_last = device, precision, channels_last
        self.model = model.to(device).eval()
        self.regressor = None if regressor is None else regressor.to(device).eval()
        if channels_last:
            self.model.to(memory_format=torch.channels_last)

    def _autocast(self):
        if self.precision == "fp32":
            return nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            return self.model.features(x).float()

    @torch.inference_mode()
    def run(self, full: torch.Tensor, half: torch.Tensor, features: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        if full.shape[-2:] == half.shape[-2:]:  # crops: both scales in one forward
            f = self._features(torch.cat([full, half]))
            f = torch.cat([f[: len(full)], f[len(full):]], dim=1)
        else:
            f = torch.cat([self._features(full), self._features(half)], dim=1)
        if self.regressor is None:
            raw = torch.full((len(f),), float("nan"))
        else:
            raw = self.regressor(f).cpu()
        return raw, f.cpu() if features else None


def _weights_digest(model: ARNIQA) -> str:
    """SHA-256 over the model's config and tensors (the key of its cached export)."""
    h = hashlib.sha256(repr(model.config).encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def cached_onnx(name: str, build: Callable[[], ARNIQA]) -> Path:
    """``<cache>/onnx/<name>.onnx``: the 4096-d feature graph of the model ``build()`` returns (no
    regressor, so every regressor shares it), exported on first use only (seconds to tens of seconds
    for a ResNet-50, about 100 MB)."""
    path = cache_dir() / "onnx" / f"{name}.onnx"
    if not path.is_file():
        export_onnx(build(), None, path)
    return path


def cached_export(model: ARNIQA) -> Path:
    """:func:`cached_onnx` of ``model``, named after its weights."""
    return cached_onnx(_weights_digest(model)[:24], lambda: model)


class OnnxEngine:
    """ONNX Runtime on an exported file (:func:`~arniqa.inference.export.export_onnx`).

    A file with a ``raw_score`` output scores by itself; a feature-only file (the engine's cache) is
    followed by ``regressor`` in torch. ``threads``: ONNX Runtime's intra-op threads (default: torch's
    thread count). On CUDA the CUDA execution provider is used when the installed onnxruntime has it."""

    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike, device: torch.device, regressor: Regressor | None = None,
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.head = None if regressor is None else regressor.cpu().eval()
        if not self.path.is_file():
            raise ValueError(f"{self.path}: no such ONNX file")
        self.meta = read_sidecar(self.path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types
            raise ValueError(f"{self.path}: not an ONNX model ONNX Runtime can load ({e})") from None
        names = {i.name for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]
        if names != {"full", "half"} or not {"raw_score", "embedding"} & set(self.outputs):
            raise ValueError(f"{self.path}: not an arniqa export (inputs {sorted(names)}, outputs {self.outputs}); "
                             "write one with `arniqa export`")

    def regressor(self) -> Regressor:
        """A regressor carrying the sidecar's dataset and score range, for scaling (its weights are unused;
        the file's own regressor scores). Without a sidecar there is no range: raw scores only."""
        meta = self.meta or {}
        score_range = meta.get("score_range")
        return Regressor(dataset=meta.get("dataset"), score_range=None if score_range is None else tuple(score_range))

    def run(self, full: torch.Tensor, half: torch.Tensor, features: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        scores_inside = "raw_score" in self.outputs
        if features and "embedding" not in self.outputs:
            raise ValueError(f"{self.path} was exported without the embedding; export with --embedding for features")
        wanted = (["raw_score"] if scores_inside else []) + (["embedding"] if features or not scores_inside else [])
        feed = {"full": np.ascontiguousarray(full.numpy(), dtype=np.float32),
                "half": np.ascontiguousarray(half.numpy(), dtype=np.float32)}
        try:
            out = dict(zip(wanted, self.session.run(wanted, feed)))
        except Exception as e:  # onnxruntime's errors are not RuntimeError subclasses
            raise RuntimeError(f"ONNX Runtime failed: {e}") from e
        emb = torch.from_numpy(out["embedding"]) if "embedding" in out else None
        if scores_inside:
            raw = torch.from_numpy(out["raw_score"])
        elif self.head is not None:
            with torch.inference_mode():
                raw = self.head(emb)
        else:
            raw = torch.full((len(emb),), float("nan"))
        return raw, emb if features else None
