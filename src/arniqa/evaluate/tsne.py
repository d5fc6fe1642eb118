"""t-SNE of image features coloured by distortion type (or by score), like the paper's figures."""

from __future__ import annotations

import numpy as np

from ..utils.files import Writer
from .report import literal, png_writer

NO_TYPE = "(no type)"  # the legend entry of images without a distortion type (in no per-type row of the report)


def embed(
    features, perplexity: float = 30.0, seed: int = 0, max_images: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """2-D t-SNE of image-level features: the mean over crops of (images, crops, D) features
    (or (images, D) as is), PCA to 50 dimensions first. Returns ``(points (m, 2), image indices)``;
    ``max_images`` keeps a seeded random subset."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    feats = np.asarray(features, dtype=np.float32)
    if feats.ndim == 3:
        feats = feats.mean(axis=1)
    index = np.arange(len(feats))
    if max_images is not None and len(feats) > max_images:
        index = np.sort(np.random.default_rng(seed).choice(len(feats), max_images, replace=False))
        feats = feats[index]
    if len(feats) < 5:
        raise ValueError(f"t-SNE needs at least 5 images, got {len(feats)}")
    if feats.shape[1] > 50 and len(feats) > 50:
        feats = PCA(n_components=50, random_state=seed).fit_transform(feats)
    perplexity = min(perplexity, (len(feats) - 1) / 3)
    points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(feats)
    return points, index


def tsne_plot(features, labels=None, values=None, title: str = "t-SNE", **options) -> Writer:
    """What writes a t-SNE scatter PNG (:func:`.report.png_writer`): one colour per ``labels`` category (a None
    label is :data:`NO_TYPE`), or a colour map over ``values``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points, index = embed(features, **options)
    fig, ax = plt.subplots(figsize=(7, 6), dpi=120)
    if labels is not None:
        labels = np.asarray([NO_TYPE if x is None else str(x) for x in labels])[index]
        names = sorted(set(labels.tolist()))
        cmap = plt.get_cmap("tab20", max(len(names), 1)) if len(names) <= 20 else plt.get_cmap("gist_ncar", len(names))
        for k, name in enumerate(names):
            m = labels == name
            ax.scatter(points[m, 0], points[m, 1], s=5, color=cmap(k), label=literal(name))
        ax.legend(fontsize=6, markerscale=2, ncol=2 if len(names) > 12 else 1, loc="best")
    else:
        sc = ax.scatter(
            points[:, 0], points[:, 1], s=5, c=None if values is None else np.asarray(values)[index], cmap="viridis"
        )
        if values is not None:
            fig.colorbar(sc, ax=ax, label="score")
    ax.set(title=title, xticks=[], yticks=[])
    fig.tight_layout()
    return png_writer(fig)
