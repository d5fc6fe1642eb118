"""arniqa: no-reference image quality assessment with ARNIQA and an SE-ResNet50 encoder."""

__version__ = "0.1.0"
