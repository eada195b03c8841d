"""Training-time image transform: the authors' `RandomResizedCrop(size, scale=(0.9, 1.0))`, bicubic, then CLIP
normalisation (open_clip's training transform), seeded per (seed, epoch, sample) so that resuming is exact.

For the families whose images go through the checkpoint's own processor (SigLIP, SigLIP 2; `degla.families`), the
same random crop box is cut from the image and the processor does the rest, as it does for evaluation: its resize
to the input size (bicubic for SigLIP: the crop and resize of `RandomResizedCrop`) and normalisation, or NaFlex's
resize to its patch budget with `pixel_attention_mask` and `spatial_shapes`.

`train_augmentation="none"` uses the checkpoint's deterministic `CLIPImageProcessor` as loaded (transformers'
centre crop, which can sit one pixel from torchvision's; the evaluation harness uses torchvision's,
`degla.eval.OpenCLIPImageProcessor`).
The crop parameters follow torchvision's `RandomResizedCrop.get_params` (ten tries at a random area and aspect
ratio, then the largest centre crop of an allowed ratio); the crop and resize are PIL's, as torchvision does for
PIL images.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from ..families import FAMILIES, Family

AUGMENTATIONS = ("random_resized_crop", "none")
RATIO = (3 / 4, 4 / 3)  # torchvision's default aspect-ratio range, which open_clip keeps


def random_resized_crop_box(width: int, height: int, scale: tuple[float, float], rng: np.random.Generator,
                            ratio: tuple[float, float] = RATIO) -> tuple[int, int, int, int]:
    """(left, top, crop width, crop height) by torchvision's `RandomResizedCrop.get_params` algorithm."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


class TrainImageTransform:
    """Images of a training batch → `pixel_values`, the same for the student and its teacher.

    Args:
        image_processor: the checkpoint's image processor. CLIP: its crop size, mean and std are used (with
            `augmentation="none"` it is applied as is); SigLIP / SigLIP 2: it is applied to the crops.
        augmentation: `"random_resized_crop"` or `"none"`.
        scale: area range of the random crop (the authors: (0.9, 1.0)).
        seed: the run's seed; sample `i` of epoch `e` is cropped with the generator seeded by (seed, e, i).
        family: the student's family (`degla.families`); CLIP when omitted.
    """

    def __init__(self, image_processor, augmentation: str = "random_resized_crop",
                 scale: tuple[float, float] = (0.9, 1.0), seed: int = 0, family: Family | None = None):
        if augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, got {augmentation!r}")
        self.image_processor = image_processor
        self.augmentation = augmentation
        self.scale = tuple(scale)
        self.seed = seed
        self.family = family or FAMILIES["clip"]
        self.resizes_itself = self.family.image == "checkpoint"  # the processor resizes the crop (SigLIP)
        if not self.resizes_itself:
            crop = image_processor.crop_size
            self.size = (crop["width"], crop["height"])
            self.mean = np.asarray(image_processor.image_mean, dtype=np.float32)
            self.std = np.asarray(image_processor.image_std, dtype=np.float32)
        self.epoch = 0  # set by the trainer at the start of every epoch

    def crop_box(self, image: Image.Image, index: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of sample `index`'s random crop in this epoch."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        left, top, w, h = random_resized_crop_box(image.width, image.height, self.scale, rng)
        return left, top, left + w, top + h

    def crop(self, image: Image.Image, index: int) -> Image.Image:
        # crop, then resize (as torchvision: PIL's `resize(box=...)` would read pixels outside the crop)
        return image.crop(self.crop_box(image, index)).resize(self.size, Image.Resampling.BICUBIC)

    def __call__(self, images: list[Image.Image], indices: list[int]) -> torch.Tensor:
        """The batch's `pixel_values`."""
        return self.image_inputs(images, indices)["pixel_values"]

    def image_inputs(self, images: list[Image.Image], indices: list[int]) -> dict[str, torch.Tensor]:
        """Every image input of the batch: `pixel_values`, and NaFlex's `pixel_attention_mask` and
        `spatial_shapes` for SigLIP 2."""
        # An RGB image is used as is (`convert` would copy it); others are converted.
        images = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
        if self.augmentation != "none" and self.resizes_itself:
            images = [image.crop(self.crop_box(image, i)) for image, i in zip(images, indices)]
        if self.augmentation == "none" or self.resizes_itself:
            outputs = self.image_processor(images, return_tensors="pt")
            return {k: v for k, v in outputs.items() if isinstance(v, torch.Tensor)}
        crops = np.stack([np.asarray(self.crop(image, i)) for image, i in zip(images, indices)])  # (b, H, W, 3) uint8
        # Channels first while the pixels are bytes, then (x / 255 - mean) / std in place, in float32: the same
        # operations in the same order as the per-image numpy version, with one float buffer instead of six.
        pixels = torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous().float()
        mean, std = (torch.from_numpy(v).view(1, 3, 1, 1) for v in (self.mean, self.std))
        return {"pixel_values": pixels.div_(255.0).sub_(mean).div_(std)}
