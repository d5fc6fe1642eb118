"""Images in, model inputs out: the folder walk and the image-file rule (folders), decoding (images; the PNG and
TIFF reading beside PIL's in png and tiff, the bytes they read in headers), arrays and tensors (pixels), two-scale
views, pristine training pairs, the synthetic benchmark, the sample photos bundled with scikit-image and
scikit-learn (samples) and the IQA datasets (iqa/). May import constants, utils and degradations."""

from .images import IMAGE_EXTENSIONS, ImageError, is_image_file, open_image, to_rgb
from .pixels import load_image, pil_to_tensor, tensor_to_pil
from .views import PROTOCOLS, Protocol, five_crops, get_protocol, half_scale

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageError",
    "PROTOCOLS",
    "Protocol",
    "five_crops",
    "get_protocol",
    "half_scale",
    "is_image_file",
    "load_image",
    "open_image",
    "pil_to_tensor",
    "tensor_to_pil",
    "to_rgb",
]
