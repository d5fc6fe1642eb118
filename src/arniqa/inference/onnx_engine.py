"""ONNX Runtime on an exported file, without torch: numpy views in, numpy scores and features out.

``arniqa score`` on an ONNX file runs on this module, the PIL views (:meth:`arniqa.data.views.Protocol.arrays`)
and the :class:`~arniqa.inference.Scorer`, and imports neither torch nor timm. torch comes in only for
what needs it: a regressor head in torch after a feature-only file (the engine's cache), tensor inputs,
explanations.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..data.iqa.registry import ALIASES, ScoreRange, scale_score
from ..models.paths import no_such_file
from ..utils.files import unreadable
from ..utils.messages import file_line, words
from ..utils.names import keyword
from ..utils.runtime import out_of_memory
from .sidecar import CACHED_AGAIN, EXPORT_AGAIN, in_cache, read_sidecar, sidecar_path

if TYPE_CHECKING:
    from ..models.regressor import Regressor

ONNX_PRECISIONS = ("fp32", "int8")  # what ONNX Runtime files hold (arniqa.inference.quantize makes int8 ones)
ORT_CHECKS_EXTERNAL_DATA = (1, 24)  # from this onnxruntime on, it refuses tensor data outside the model's folder
NOT_ONNX = f"give the file that arniqa export wrote, or {EXPORT_AGAIN}"  # a file that is no ONNX model
# ONNX Runtime's log severities: fatal only (its errors reach us raised, its log lines would come before our one
# line), and its default logger's own level (warnings)
ORT_FATAL, ORT_WARNING = 4, 2
EXPLAIN_OUTPUTS = ("explain_logits", "severity")  # per view, with an explanation head (arniqa.inference.onnx_export)


class LoadingOutOfMemory(MemoryError):
    """ONNX Runtime ran out of memory loading a file already made (an export, an int8 form): scoring without it (the
    torch engine, or fp32 for int8) takes more."""


class NonFinite(RuntimeError):
    """A model gave a NaN or infinite output for an image (:func:`non_finite`)."""


def non_finite(output: str) -> str:
    """The error of an image that the model gave a NaN or infinite ``output`` for, either engine's."""
    return (
        f"the model gave a NaN or infinite {output} (damaged weights where every image gives one, as a training run "
        "that diverged leaves: score an earlier checkpoint of it; else an overflow on this image)"
    )


@dataclass(frozen=True)
class ScoreScale:
    """A regressor's dataset and score range without its weights (the file's own regressor scores): what a
    :class:`~arniqa.inference.Scorer` needs to scale the scores of an ONNX file."""

    dataset: str | None = None
    score_range: ScoreRange | None = None

    def scale(self, raw):
        if self.score_range is None:
            raise ValueError("no score range (the ONNX file has no sidecar); use raw scores")
        return scale_score(raw, self.score_range)


@dataclass(frozen=True)
class GraphHead:
    """The explanation head inside an exported file: its outputs :data:`EXPLAIN_OUTPUTS` per view, the columns
    of ``explain_logits`` named by the sidecar's ``explain_labels``. What ``Scorer.explainer`` holds for such a
    file unless an :class:`~arniqa.models.explain.Explainer` is given (``load(explainer=...)``), which then runs on
    the file's embedding; :func:`arniqa.inference.explaining.explain_views` makes an image's explanation."""

    labels: tuple[str, ...]
    protocol: str | None = None  # what the head was fitted on: the sidecar's explain_protocol (None: unknown)

    def check_protocol(self, protocol: str, say=keyword) -> None:
        """Warn (one line) when the head was fitted on another protocol's features, as a head file does."""
        from ..models.explain import check_head_protocol  # here: it imports torch, which explaining needs anyway

        check_head_protocol(self.protocol, protocol, say)


def execution_providers(device) -> tuple[str, list]:
    """Where ONNX Runtime runs for a torch device or a name: ``cpu`` or ``cuda``, and its execution providers
    (``auto``: cuda when the installed onnxruntime has its CUDA provider). ValueError for other devices, and for
    cuda when onnxruntime has no CUDA provider (the wheel in the dependencies is CPU-only), which ran on the CPU
    without a word."""
    import onnxruntime as ort

    kind, _, index = str(device).partition(":")
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if kind == "auto":
        kind = "cuda" if has_cuda else "cpu"
    if kind not in ("cpu", "cuda") or not (index == "" or index.isdigit()):  # cpu:N is the CPU, as for torch
        raise ValueError(f"device {str(device)!r}: ONNX Runtime runs on cpu or cuda; choose one, or auto")
    if kind == "cpu":
        return kind, ["CPUExecutionProvider"]
    if not has_cuda:
        raise ValueError(
            f"device {str(device)!r}: the installed onnxruntime has no CUDA provider; pip install onnxruntime-gpu, "
            "or choose --device cpu or --engine torch"
        )
    return kind, [("CUDAExecutionProvider", {"device_id": int(index or 0)}), "CPUExecutionProvider"]


def default_threads() -> int:
    """torch's thread count when torch is loaded (the same threads for both engines), else OMP_NUM_THREADS,
    else 0 (ONNX Runtime's default: one per physical core)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.get_num_threads()
    return int(os.environ.get("OMP_NUM_THREADS", "0") or 0)


class OnnxEngine:
    """ONNX Runtime on an exported file (:func:`~arniqa.inference.onnx_export.export_onnx`).

    A file with a ``raw_score`` output scores by itself; a feature-only file (the engine's cache) is
    followed by ``regressor`` in torch. ``threads``: ONNX Runtime's intra-op threads (default:
    :func:`default_threads`). ``device``: as :func:`execution_providers`."""

    name = "onnxruntime"

    def __init__(
        self, path: str | os.PathLike, device="cpu", regressor: Regressor | None = None, threads: int | None = None
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.device, providers = execution_providers(device)
        self.head = None if regressor is None else regressor.cpu().eval()
        if not self.path.is_file():
            raise ValueError(no_such_file(self.path, "ONNX"))
        try:  # ONNX Runtime says a file it may not read is no model ("system error number 13")
            with open(self.path, "rb"):
                pass
        except OSError as e:
            raise ValueError(unreadable(self.path, e)) from None
        self.meta = read_sidecar(self.path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.log_severity_level = ORT_FATAL
        if _version(ort.__version__) < ORT_CHECKS_EXTERNAL_DATA:
            check_external_data(self.path)
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types
            if out_of_memory(e):  # not the file's fault
                raise LoadingOutOfMemory(
                    f"{self.path}: ONNX Runtime ran out of memory loading it ({words(str(e))})"
                ) from e
            again = CACHED_AGAIN if in_cache(self.path) else NOT_ONNX  # a cut export, a disk's fault: no file of theirs
            raise ValueError(
                f"{self.path}: not an ONNX model ONNX Runtime can load ({words(str(e))}); {again}"
            ) from None
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]
        if inputs.keys() != {"full", "half"} or not {"raw_score", "embedding"} & set(self.outputs):
            raise ValueError(
                f"{self.path}: not an arniqa export (inputs {sorted(inputs)}, outputs {self.outputs}); "
                "write one with `arniqa export`"
            )
        typed = {**inputs, **{o.name: o for o in self.session.get_outputs()}}
        for name, arg in typed.items():
            if arg.type != "tensor(float)" or (name in inputs and len(arg.shape) != 4):
                raise ValueError(
                    f"{self.path}: not an arniqa export ({name!r} is a {arg.type} of shape {arg.shape}, "
                    f"not float32{' (N,3,H,W)' if name in inputs else ''}); write one with `arniqa export`"
                )
        shape = typed["embedding"].shape if "embedding" in typed else None
        # the embedding's width, known at load where the graph fixes it (as `arniqa export` does), else None
        self.width = shape[1] if shape and len(shape) == 2 and isinstance(shape[1], int) else None
        labels = (self.meta or {}).get("explain_labels")  # read_sidecar checked them
        self.explainer = (
            GraphHead(tuple(labels), (self.meta or {}).get("explain_protocol"))
            if labels and set(EXPLAIN_OUTPUTS) <= set(self.outputs)
            else None
        )
        score_range = (self.meta or {}).get("score_range")
        # the graph's own scaled score, to check the sidecar's range against
        self.scaled = None if score_range is None or "score" not in self.outputs else ScoreRange(*score_range)

    def regressor(self) -> ScoreScale:
        """The sidecar's dataset and score range, for scaling. Without a sidecar there is no range: raw
        scores only."""
        meta = self.meta or {}
        dataset, score_range = meta.get("dataset"), meta.get("score_range")
        return ScoreScale(
            None if dataset is None else ALIASES.get(dataset.lower(), dataset.lower()),
            None if score_range is None else ScoreRange(float(score_range[0]), float(score_range[1]), score_range[2]),
        )

    def run(
        self, full, half, features: bool, explain: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None, tuple | None]:
        """Raw scores (M,) and, when asked, (M, 4096) features and the file's explanation outputs, logits (M, G)
        and severities (M,) (else None), of views ``full`` and ``half`` (arrays or tensors on any device, float32
        in [0, 1])."""
        scores_inside = "raw_score" in self.outputs
        if features and "embedding" not in self.outputs:
            raise ValueError(f"{self.path} was exported without the embedding; export with --embedding for features")
        if explain and self.explainer is None:
            raise ValueError(f"{self.path} has no explanation outputs; export it with an explanation head")
        wanted = (["raw_score"] if scores_inside else []) + (["embedding"] if features or not scores_inside else [])
        wanted += ["score"] if scores_inside and self.scaled is not None else []
        wanted += list(EXPLAIN_OUTPUTS) if explain else []
        feed = {
            "full": _host_array(full),
            "half": _host_array(half),
        }
        try:
            out = dict(zip(wanted, self.session.run(wanted, feed)))
        except Exception as e:  # onnxruntime's errors are not RuntimeError subclasses
            raise RuntimeError(f"ONNX Runtime failed: {words(str(e))}") from e
        n = len(feed["full"])
        for name, value in out.items():
            wrong = value.shape[:1] != (n,) or value.ndim != (2 if name in ("embedding", "explain_logits") else 1)
            if wrong or (name == "explain_logits" and value.shape[1] != len(self.explainer.labels)):
                raise RuntimeError(
                    f"{self.path}: output {name!r} has shape {value.shape} for {n} input views; export it again"
                )
            if not np.isfinite(value).all():
                raise NonFinite(non_finite(name))
        if "score" in out and not np.allclose(scale_score(out["raw_score"], self.scaled), out["score"], atol=1e-4):
            raise RuntimeError(
                f"{sidecar_path(self.path)}: its score range {list(self.scaled)} disagrees with the scores "
                f"{self.path.name} computes; export the model again"
            )
        emb = out.get("embedding")
        if scores_inside:
            raw = out["raw_score"]
        elif self.head is not None:
            import torch

            with torch.inference_mode():
                raw = self.head(torch.from_numpy(emb)).numpy()
        else:
            raw = np.full(len(emb), np.nan, dtype=np.float32)
        return raw, emb if features else None, (out["explain_logits"], out["severity"]) if explain else None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


def check_external_data(path: Path) -> None:
    """ValueError when a tensor of the ONNX file at ``path`` keeps its data outside the file's folder (an
    absolute location, ``..``, a link leading out): onnxruntime before 1.24 reads whatever file is named there."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError, onnx's own errors
        raise ValueError(file_line(path, f"not an ONNX model ({words(str(e))})", NOT_ONNX)) from None
    folder = path.absolute().parent.resolve()
    for location in _external_locations(model):
        if Path(location).is_absolute() or not (folder / location).resolve().is_relative_to(folder):
            raise ValueError(
                file_line(
                    path,
                    f"its weights are read from {location!r}, outside the folder of the file",
                    "keep the external data files beside it",
                )
            )


def _external_locations(message) -> Iterator[str]:
    """The external data locations of every tensor in an ONNX message (initializers, node attributes,
    sparse tensors, subgraphs, functions)."""
    from google.protobuf.message import Message
    from onnx import TensorProto

    if isinstance(message, TensorProto):
        if message.data_location == TensorProto.EXTERNAL:
            yield next((e.value for e in message.external_data if e.key == "location"), "")
        return
    for field, value in message.ListFields():
        if field.type == field.TYPE_MESSAGE:
            for item in [value] if isinstance(value, Message) else value:
                yield from _external_locations(item)


def _host_array(views) -> np.ndarray:
    """Views as the float32 C-contiguous array ONNX Runtime takes: a tensor (a CUDA one too) is copied to the CPU."""
    if hasattr(views, "detach"):  # a torch tensor, without importing torch
        views = views.detach().cpu()
    return np.ascontiguousarray(views, dtype=np.float32)
