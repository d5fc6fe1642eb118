"""Scoring and feature extraction on a Ray cluster: callable classes for ``Dataset.map_batches``.

:class:`ArniqaScorer` loads a model once per actor with :func:`arniqa.inference.load` (the same model
names, checkpoints, protocols, engines and options as ``arniqa score``) and scores batches through
:meth:`~arniqa.inference.Scorer.iter_scores`, so a bad item is an error row and the batch goes on::

    ds = ray.data.read_binary_files("s3://bucket/photos/", include_paths=True)
    ds = ds.map_batches(ArniqaScorer, fn_constructor_kwargs={"protocol": "crops"}, batch_size=32,
                        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=4), num_cpus=1)

A batch holds one of: ``image`` (decoded HxWxC arrays, as ``read_images`` gives: uint8 pixels score as the file they
came from), ``bytes`` (encoded files, as ``read_binary_files`` gives), or ``path`` alone (files each actor reads;
with ``shard``, ``offset`` and ``size`` columns, tar shard members, see :func:`reference_rows`); ``path`` names the
rows (str, or bytes as :func:`os.fsencode` gives). Out come the other input columns plus ``score`` (scaled when the
regressor has a score range, else raw), ``raw_score`` (NaN for failed rows), ``error`` (the reason, or None when
scored; a block without errors may come back as NaN), ``note`` (the warnings about the file, such as its first
frame scored, as :attr:`~arniqa.inference.results.ItemResult.note`; None or NaN as ``error``'s) and, with
``embedding=True``, ``embedding``: the image's 4096-d quality feature (mean over its views, the vector the
regressor scores).

:class:`RayScorer` is what ``arniqa score --ray`` runs: the same rows as a local :class:`Scorer`, in
input order. :func:`extract_features_on_ray` is the ``arniqa evaluate --ray`` feature extraction into
the same :class:`~arniqa.evaluate.features.FeatureCache`. Ray is the optional extra ``arniqa[ray]``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..constants import DEFAULT_MODEL, QUALITY_DIM
from ..inference.inputs import Encoded
from ..inference.results import ItemResult, emit_in_order
from ..inference.scorer import explainer_missing
from ..inference.shards import Member, Unreadable
from ..utils.messages import warn_file


class RayRunError(RuntimeError):
    """A Ray run that stopped: an actor that could not start, a lost node. Per-item problems are error rows
    instead; a model an actor could not load is :class:`WorkerLoadError`."""


class WorkerLoadError(Exception):
    """An actor of :class:`RayScorer` or :func:`extract_features_on_ray` could not load the model (a file missing or
    damaged on its node, memory running out): ``error`` is what its load raised (with the errors it was raised
    from), to be said as the load here says it (``arniqa score``, ``arniqa evaluate``: one line, exit 2)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error

    def raise_error(self):
        raise self.error


ROWS_PER_CALL = 4  # scorer batches per map_batches call: the actor's decode threads work one batch ahead


def require_ray():
    """The ``ray`` module with Ray Data, or ImportError saying how to install it, or why it does not import."""
    try:
        import ray
        import ray.data  # noqa: F401  (needs pyarrow)
    except ModuleNotFoundError as e:
        raise ImportError(f"Ray Data is not installed ({e}); install it with: pip install 'arniqa[ray]'") from None
    except ImportError as e:  # installed, but its packages do not fit (pyarrow 26 refuses numpy 1.x)
        raise ImportError(
            f"Ray Data is installed but does not import ({e}); install a version of the package it names that "
            "fits the others"
        ) from None
    return ray


@contextmanager
def connected(address: str = "local"):
    """Connected to the Ray cluster at ``address`` (``auto``, ``HOST:PORT``, ``ray://HOST:10001``), or to
    a Ray instance started here with this machine's CPUs and GPUs (``local``). A process that is already
    connected keeps its connection; one made here is closed on exit."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    if address == "local":
        # A new instance, whatever RAY_ADDRESS or a `ray start` here say. Token authentication stays on (Ray's
        # default for a new instance); only its note of how to opt out, on every start, is quiet: the instance is
        # this command's, ended with it.
        token_note = logging.getLogger("ray._private.authentication.authentication_token_setup")
        level = token_note.level
        token_note.setLevel(logging.ERROR)
        try:
            ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
        finally:
            token_note.setLevel(level)
    else:
        answers(address)
        ray.init(address=address, logging_level=logging.WARNING)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the caller shows one bar
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    try:
        yield ray
    finally:
        ray.shutdown()


def answers(address: str, timeout: float = 10.0) -> None:
    """ConnectionError at once when nothing answers at a ``HOST:PORT`` or ``ray://HOST:PORT`` address: Ray itself
    retried for minutes (a port with nothing behind it); other forms (``auto``) are left to Ray."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(
            f"nothing answers at {host}:{port} ({e.strerror or e}); check the address and that the cluster is up"
        ) from None


def worker_slots(device: str = "auto", workers: int | None = None, items: int | None = None) -> tuple[int, dict]:
    """The number of actors and the ``map_batches`` arguments for them: ``workers`` actors (default: one per
    GPU when the cluster has GPUs and ``device`` may use them, else one per CPU), at most one per item of
    ``items``: the actor pool, and the CPUs (all of the cluster's split between the actors, at most one node's) and
    GPUs each actor holds."""
    import ray

    res = ray.cluster_resources()
    cpus, gpus = int(res.get("CPU", 1)), int(res.get("GPU", 0))
    if gpus and (device == "auto" or device.startswith("cuda")):
        n, per_cpu, per_gpu = min(workers or gpus, items or math.inf), 1, 1
    else:
        node_cpus = max(int(n["Resources"].get("CPU", 1)) for n in ray.nodes() if n["Alive"])
        n = min(workers or max(1, cpus), items or math.inf)
        per_cpu, per_gpu = max(1, min(node_cpus, cpus // n)), 0
    # The pool starts with the actors the cluster holds now and grows to n with it: a pool of n waited for all n
    # to start, forever when they could not (--ray-workers 100000 on 2 CPUs).
    start = max(1, min(n, gpus // per_gpu if per_gpu else cpus // per_cpu))
    compute = ray.data.ActorPoolStrategy(min_size=start, max_size=n)
    return start, {"compute": compute, "num_cpus": per_cpu, "num_gpus": per_gpu}


def _blocks(rows: list, per_call: int, actors: int) -> tuple[int, int]:
    """``(rows per call, blocks)``: calls of at most ``per_call`` rows, and at least one block per actor (as many
    actors as rows at most: :func:`worker_slots`); with fewer, Ray warns that the pool's actors have no work."""
    per_call = max(1, min(per_call, len(rows) // actors))
    return per_call, math.ceil(len(rows) / per_call)


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def _batches(ds) -> Iterator[dict]:
    """``ds``'s output batches as they are computed, Ray's errors raised as :class:`RayRunError`, an actor's load
    failure (:class:`_SendsLoadFailure`) as :class:`WorkerLoadError`; the workers' warnings raised again here, one
    that is about no file (a FileWarning names its file) once: every worker's batch may say it."""
    import ray

    said_once = set()
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            if "load_error" in batch:
                raise WorkerLoadError(_raised_again(batch["load_error"][0]))
            for said in batch.pop("warnings", ()):  # the workers' (_SendsLoadFailure), said here
                for kind, message in json.loads(said) if said else ():
                    if kind is not None:
                        warn_file(message, kind, stacklevel=2)
                    elif message not in said_once:
                        said_once.add(message)
                        warnings.warn(message, stacklevel=2)
            yield batch
    except ray.exceptions.RayError as e:
        raise RayRunError(str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__) from e


# ---- load failures ---------------------------------------------------------------------------------


def _load_failure(error: Exception) -> bytes | None:
    """``error`` and the errors it was raised from, pickled, when it is a load failure that the commands say in
    one line (a ValueError or OSError, memory running out); else None. An error that does not pickle (a class
    whose arguments are not its args) goes as a ValueError (a ValueError or OSError) or RuntimeError of its text, which
    :func:`~arniqa.utils.runtime.out_of_memory` reads."""
    import pickle

    from ..utils.runtime import causes, out_of_memory

    if not (out_of_memory(error) or isinstance(error, (ValueError, OSError))):
        return None
    chain = []
    for e in causes(error):
        try:
            chain.append(pickle.loads(pickle.dumps(e)))
        except Exception:
            chain.append((ValueError if isinstance(e, (ValueError, OSError)) else RuntimeError)(str(e)))
    return pickle.dumps(chain)


def _raised_again(blob: bytes) -> BaseException:
    """The error of :func:`_load_failure`, raised from the same errors again."""
    import pickle

    chain = pickle.loads(blob)  # from our own actors, as all Ray sends
    for e, cause in zip(chain, chain[1:]):
        e.__cause__ = cause
    return chain[0]


class _SendsLoadFailure:
    """Mixed in before the callable class of an actor of arniqa's own runs (``score --ray``, ``evaluate --ray``): a
    load failure of :func:`_load_failure` is sent back in a ``load_error`` column in place of the rows, not raised
    (Ray would print the actor's traceback and say only its last line), and :func:`_batches` raises it again; the
    load's warnings are the driver's to say, once (it loaded the model first). A batch's warnings (a file scored on
    its first frame, downscaled) go back in a ``warnings`` column, for :func:`_batches` to raise again on the driver,
    where the command prints them as its own (Ray printed each as two lines of Python's, behind its prefix)."""

    def __init__(self, *args, **kwargs) -> None:
        self.failed = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                super().__init__(*args, **kwargs)
        except Exception as e:
            self.failed = _load_failure(e)
            if self.failed is None:
                raise

    def __call__(self, batch: dict) -> dict:
        if self.failed is not None:
            index = np.asarray(batch["index"])
            return {"index": index, "load_error": np.array([self.failed] * len(index), dtype=object)}
        with warnings.catch_warnings(record=True) as said:
            out = super().__call__(batch)
        kinds = [[getattr(w.message, "kind", None), str(w.message)] for w in said]
        out["warnings"] = np.array([json.dumps(kinds) if kinds else ""] + [""] * (len(out["index"]) - 1), dtype=object)
        return out


# ---- scoring ---------------------------------------------------------------------------------------


def batch_items(batch: dict) -> list:
    """The Scorer inputs of one batch (see the module docstring for the columns)."""
    names = [os.fsdecode(p) for p in batch["path"]] if "path" in batch else None
    if "image" in batch:  # arrays: 8-bit pixels score as the file they were decoded from
        return [np.asarray(a) for a in batch["image"]]
    if "bytes" in batch:
        return [Encoded(names[i] if names else f"<row {i}>", bytes(b)) for i, b in enumerate(batch["bytes"])]
    if names is None:
        raise ValueError("a batch needs an 'image', 'bytes' or 'path' column")
    if "shard" not in batch:
        return names
    return [
        Member(os.fsdecode(s), name[len(os.fsdecode(s)) + 1 :], int(o), int(z)) if s else name
        for name, s, o, z in zip(names, batch["shard"], batch["offset"], batch["size"])
    ]


def reference_rows(items: list, indices: list[int] | None = None) -> list[dict]:
    """Rows for :class:`ArniqaScorer` naming files (paths) and tar members (:class:`Member`): the
    actors read the bytes, so the files must be where the workers run (shared storage on a cluster).
    ``index`` is each item's entry of ``indices`` (default: its position in ``items``). Names go as bytes
    (:func:`os.fsencode`): a name that is not UTF-8 is no Arrow string, and Ray's workers said so on stderr."""
    rows = []
    for i, it in zip(range(len(items)) if indices is None else indices, items):
        if isinstance(it, Member):
            path, shard = os.fsencode(it.name), os.fsencode(it.shard)
            rows.append({"index": i, "path": path, "shard": shard, "offset": it.offset, "size": it.size})
        else:
            rows.append({"index": i, "path": os.fsencode(str(it)), "shard": b"", "offset": -1, "size": -1})
    return rows


class ArniqaScorer:
    """A callable class for ``Dataset.map_batches``: one :class:`~arniqa.inference.Scorer` per actor.

    ``model`` and ``**load_options`` go to :func:`arniqa.inference.load` (``weights_dir``, ``protocol``,
    ``regressor``, ``engine``, ``device``, ``batch_size``, ``workers``, ...); ``scale``: scaled scores
    when the regressor has a score range; ``embedding``: also the 4096-d feature; ``explain``: also the
    explanation by the model's own head (an ONNX file exported with one), columns ``explain_probs`` (n, G) and
    ``severity`` (NaN for failed rows); ``threads``: torch's (and ONNX Runtime's) threads in this actor; ``cwd``:
    the folder relative paths (files, weights) are read from (``arniqa score --ray`` passes its own)."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        scale: bool = True,
        embedding: bool = False,
        explain: bool = False,
        threads: int | None = None,
        cwd: str | None = None,
        **load_options,
    ) -> None:
        from ..inference import load

        _set_threads(threads)
        if cwd is not None:
            os.chdir(cwd)
        self.scorer = load(model, **load_options)
        reg = self.scorer.regressor
        if reg is None and not embedding:
            raise ValueError(f"{model}: the model has no regressor; pass regressor=FILE")
        if explain and self.scorer.explainer is None:  # here, not on every batch once the data flows
            raise ValueError(f"{model}: {explainer_missing(self.scorer.engine)}")
        self.scale = scale and reg is not None and reg.score_range is not None
        self.embedding, self.explain = embedding, explain

    def __call__(self, batch: dict) -> dict:
        results = list(self.scorer.iter_scores(batch_items(batch), self.embedding, self.explain))
        out = {k: v for k, v in batch.items() if k not in ("image", "bytes")}
        raw = [math.nan if r.raw_score is None else r.raw_score for r in results]
        out["score"] = np.array(
            [r.score if self.scale and r.score is not None else v for r, v in zip(results, raw)], dtype=np.float64
        )
        out["raw_score"] = np.array(raw, dtype=np.float64)
        out["error"] = np.array([r.error for r in results], dtype=object)
        out["note"] = np.array([r.note for r in results], dtype=object)
        if self.embedding:
            dim = next((r.features.shape[-1] for r in results if r.features is not None), QUALITY_DIM)
            out["embedding"] = np.stack(
                [
                    r.features.mean(0).numpy() if r.features is not None else np.full(dim, np.nan, np.float32)
                    for r in results
                ]
            )
        if self.explain:
            nan = np.full(len(self.scorer.explainer.labels), np.nan, np.float32)
            out["explain_probs"] = np.stack(
                [nan if r.explanation is None else r.explanation[0].numpy() for r in results]
            )
            out["severity"] = np.array([math.nan if r.explanation is None else r.explanation[1] for r in results])
        return out


class _ScoringActor(_SendsLoadFailure, ArniqaScorer):
    """:class:`RayScorer`'s actor."""


class RayScorer:
    """``arniqa score --ray``: :meth:`iter_scores` gives the rows a local Scorer gives, computed by
    :class:`ArniqaScorer` actors on the connected cluster, in input order as soon as they are ready.

    ``load_options`` are :func:`~arniqa.inference.load`'s (model by ``model``); ``workers``: actors (see
    :func:`worker_slots`); ``explainer``: the explanation head the rows are explained with (``--explain``),
    from the image's feature that the actors send back (an ONNX file's own head, a
    :class:`~arniqa.inference.onnx_engine.GraphHead`: the actors explain with it and send the explanation)."""

    def __init__(self, load_options: dict, workers: int | None = None, explainer=None) -> None:
        self.options = dict(load_options)
        self.workers = workers
        self.explainer = explainer

    def iter_scores(self, items: list, return_features: bool = False, explain: bool = False) -> Iterator[ItemResult]:
        """As :meth:`Scorer.iter_scores`; ``return_features``: each result's ``features`` is the image's
        feature, (1, 4096): the mean over its views, which is what the regressor and an explainer see."""
        import ray
        import torch

        from ..inference.explaining import explain_features
        from ..inference.onnx_engine import GraphHead

        graph = explain and isinstance(self.explainer, GraphHead)
        embedding = return_features or (explain and not graph)

        done: dict[int, ItemResult] = {}
        for i, it in enumerate(items):
            if isinstance(it, Unreadable):  # nothing for a worker to do
                done[i] = ItemResult(i, it.name, error=it.reason)
        todo = [it for it in items if not isinstance(it, Unreadable)]
        index = [i for i, it in enumerate(items) if not isinstance(it, Unreadable)]
        emitted = 0
        if todo:
            rows = reference_rows(todo, index)
            actors, slots = worker_slots(str(self.options.get("device", "auto")), self.workers, len(rows))
            per_call, blocks = _blocks(rows, ROWS_PER_CALL * (self.options.get("batch_size") or 8), actors)
            ds = ray.data.from_items(rows, override_num_blocks=blocks)
            ds = ds.map_batches(
                _ScoringActor,
                batch_size=per_call,
                batch_format="numpy",
                fn_constructor_kwargs={
                    **self.options,
                    "embedding": embedding,
                    "explain": graph,
                    "threads": slots["num_cpus"],
                    "cwd": os.getcwd(),
                },
                **slots,
            )
            for batch in _batches(ds):
                n = len(batch["index"])
                features = batch["embedding"] if embedding else [None] * n
                explained = zip(batch["explain_probs"], batch["severity"]) if graph else [None] * n
                for i, path, score, raw, error, note, feature, explanation in zip(
                    batch["index"],
                    batch["path"],
                    batch["score"],
                    batch["raw_score"],
                    batch["error"],
                    batch["note"],
                    features,
                    explained,
                ):
                    i = int(i)
                    note = note if isinstance(note, str) else None  # None, or NaN in a block without notes
                    if isinstance(error, str):
                        done[i] = ItemResult(i, os.fsdecode(path), error=error, note=note)
                        continue
                    # error None, or NaN where a block's errors were all None
                    feature = torch.from_numpy(np.array(feature))[None] if embedding else None
                    if graph:
                        explanation = torch.from_numpy(np.array(explanation[0])), float(explanation[1])
                    elif explain:
                        explanation = explain_features(self.explainer, feature)
                    kept = feature if return_features else None
                    done[i] = ItemResult(
                        i,
                        os.fsdecode(path),
                        float(score),
                        float(raw),
                        note=note,
                        features=kept,
                        explanation=explanation,
                    )
                for r in emit_in_order(done, emitted):
                    emitted += 1
                    yield r
        yield from emit_in_order(done, emitted)


# ---- evaluation features ---------------------------------------------------------------------------


class ArniqaFeatures:
    """A callable class for ``Dataset.map_batches``: per-crop evaluation features (``arniqa evaluate``'s
    :class:`~arniqa.evaluate.features.FeatureProtocol`) of the files in a ``path`` column. Out:
    ``index`` (passed through), ``features`` (n, 5, D) float32 (NaN for failed rows) and ``error``."""

    def __init__(
        self,
        checkpoint=None,
        weights_dir=None,
        protocol: dict | None = None,
        device: str = "auto",
        threads: int | None = None,
    ) -> None:
        from ..evaluate.features import FeatureProtocol
        from ..evaluate.run import load_encoder
        from ..utils.runtime import resolve_device

        _set_threads(threads)
        self.device = resolve_device(device)
        self.model, _ = load_encoder(checkpoint, weights_dir, device=self.device)
        self.protocol = FeatureProtocol(**(protocol or {}))
        self.shape: tuple | None = None  # (5, D), known after the first batch

    def __call__(self, batch: dict) -> dict:
        import torch

        from ..evaluate.features import CropItem, crop_features, read_crops

        items = [read_crops(os.fsdecode(p), int(i), self.protocol) for i, p in zip(batch["index"], batch["path"])]
        indices, feats = crop_features(self.model, items, self.device, self.protocol.amp)
        if feats is not None:
            self.shape = feats.shape[1:]
        elif self.shape is None:  # no image of this batch could be read: the shape from a blank crop
            zeros = torch.zeros(5, 3, self.protocol.crop_size, self.protocol.crop_size, dtype=torch.uint8)
            blank = CropItem(-1, zeros, zeros, None)
            self.shape = crop_features(self.model, [blank], self.device, self.protocol.amp)[1].shape[1:]
        out = np.full((len(items), *self.shape), np.nan, np.float32)
        row = {index: k for k, index in enumerate(indices)}
        for k, it in enumerate(items):
            if it.index in row:
                out[k] = feats[row[it.index]]
        return {
            "index": np.asarray(batch["index"]),
            "features": out,
            "error": np.array([it.error for it in items], dtype=object),
        }


class _FeatureActor(_SendsLoadFailure, ArniqaFeatures):
    """:func:`extract_features_on_ray`'s actor."""


def extract_features_on_ray(
    paths: list,
    todo: np.ndarray,
    protocol,
    cache,
    *,
    checkpoint=None,
    weights_dir=None,
    batch_size: int = 8,
    device: str = "auto",
    workers: int | None = None,
    advance: Callable[[int], object] = lambda n: None,
) -> None:
    """The features of the images ``todo`` (indices into ``paths``) by :class:`ArniqaFeatures` actors on
    the connected cluster, stored into ``cache`` (a :class:`~arniqa.evaluate.features.FeatureCache`) and
    flushed as each batch comes back; ``advance(n)`` after each. A model an actor could not load is
    :class:`WorkerLoadError`."""
    import ray

    checkpoint, weights_dir = (None if f is None else str(Path(f).resolve()) for f in (checkpoint, weights_dir))
    rows = [{"index": int(i), "path": os.fsencode(Path(paths[i]).resolve())} for i in todo]
    actors, slots = worker_slots(device, workers, len(rows))
    per_call, blocks = _blocks(rows, batch_size, actors)
    ds = ray.data.from_items(rows, override_num_blocks=blocks)
    ds = ds.map_batches(
        _FeatureActor,
        batch_size=per_call,
        batch_format="numpy",
        **slots,
        fn_constructor_kwargs={
            "checkpoint": checkpoint,
            "weights_dir": weights_dir,
            "device": device,
            "protocol": asdict(protocol),
            "threads": slots["num_cpus"],
        },
    )
    for batch in _batches(ds):
        ok = np.array(
            [not isinstance(e, str) for e in batch["error"]], dtype=bool
        )  # None, or NaN in a block without errors
        for i, e in zip(batch["index"][~ok], batch["error"][~ok]):
            cache.fail(int(i), str(e))
        if ok.any():
            cache.store(batch["index"][ok].astype(np.int64), batch["features"][ok])
        cache.flush()
        advance(len(ok))
