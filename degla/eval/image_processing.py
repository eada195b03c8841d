"""CLIP's image preprocessing exactly as OpenAI's CLIP and open_clip compute it.

OpenAI's `clip.load` and open_clip's evaluation transform are torchvision's `Resize(n, BICUBIC)` (shortest edge
to `n`, the long edge `int(n * long / short)`), `CenterCrop(n)`, `ToTensor()`, `Normalize(mean, std)`.
`transformers`' `CLIPImageProcessor` resizes the same way (the same size formula and PIL's bicubic filter), but
its centre crop starts at `(size - crop) // 2` while torchvision's starts at `int(round((size - crop) / 2))`,
and Python's `round` rounds halves to even. Whenever `size - crop` is 3 modulo 4 (e.g. a 427x640 photo
resized to 224x335: torchvision starts the crop at column 56, transformers at 55) the crop is shifted by one
pixel, up to 150/255 on sharp edges. transformers chose the floor on purpose (its PR #40856 made the torchvision
backend floor as well), and no processor setting changes it, so a converted checkpoint's `CLIPProcessor` cannot
reproduce the published numbers' pixels by configuration alone.

`OpenCLIPImageProcessor` is `CLIPImageProcessorPil` (every setting of the saved `preprocessor_config.json`
applies as usual) with torchvision's centre crop. The evaluation encoder uses it for every CLIP checkpoint;
saved, it writes a plain `CLIPImageProcessor` config, so the checkpoint stays loadable without degla.
Measured against open_clip's transform on real photos: see docs/evaluation.md (Parity).
"""

from __future__ import annotations

import numpy as np
from transformers import CLIPImageProcessorPil
from transformers.image_utils import SizeDict

# `image_processor_type`s whose preprocessing is CLIP's resize + centre crop (the fast one needs torchvision)
CLIP_IMAGE_PROCESSOR_TYPES = ("CLIPImageProcessor", "CLIPImageProcessorPil", "CLIPImageProcessorFast")


def torchvision_center_crop_box(height: int, width: int, crop_height: int, crop_width: int) -> tuple[int, int]:
    """(top, left) of torchvision's `CenterCrop` on an image at least as large as the crop."""
    return int(round((height - crop_height) / 2.0)), int(round((width - crop_width) / 2.0))


class OpenCLIPImageProcessor(CLIPImageProcessorPil):
    """`CLIPImageProcessorPil` whose centre crop is torchvision's `CenterCrop` (OpenAI CLIP / open_clip pixels)."""

    def center_crop(self, image: np.ndarray, size: SizeDict, **kwargs) -> np.ndarray:
        """Centre crop of a channel-first image with torchvision's rounding; zero padding (split as torchvision
        splits it) when the crop is larger than the image."""
        if size.height is None or size.width is None:
            raise ValueError(f"The size dictionary must have keys 'height' and 'width'. Got {size.keys()}")
        crop_height, crop_width = size.height, size.width
        height, width = image.shape[-2:]
        if crop_height > height or crop_width > width:
            pad_top, pad_left = max(crop_height - height, 0) // 2, max(crop_width - width, 0) // 2
            pad = [(0, 0)] * (image.ndim - 2) + [(pad_top, max(crop_height - height, 0) - pad_top),
                                                 (pad_left, max(crop_width - width, 0) - pad_left)]
            image = np.pad(image, pad, mode="constant", constant_values=0)
            height, width = image.shape[-2:]
        top, left = torchvision_center_crop_box(height, width, crop_height, crop_width)
        return image[..., top : top + crop_height, left : left + crop_width]

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["image_processor_type"] = "CLIPImageProcessor"  # a saved config loads anywhere as CLIP's processor
        return out


def as_openclip_image_processor(image_processor):
    """The same preprocessing settings with torchvision's centre crop, for a CLIP image processor; any other
    image processor is returned unchanged."""
    if isinstance(image_processor, OpenCLIPImageProcessor):
        return image_processor
    if type(image_processor).__name__ not in CLIP_IMAGE_PROCESSOR_TYPES:
        return image_processor
    return OpenCLIPImageProcessor.from_dict(image_processor.to_dict())
