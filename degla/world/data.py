"""Fine-tuning data of the shapes world as a `datasets.Dataset` (the schema of the real pipeline's captions).

One row per caption: `caption` (str), `image` (`datasets.Image()`), and `image_path` (str) when the images
are written to disk. Captions are canonical sentences of the NARROW distribution, two per image ("a small red
circle to the left of a large blue square" / "a large blue square to the right of a small red circle"):
colours, sizes and textures are adjectives, shapes are nouns, so the word-level rewrite rules of the negative
generator (reshuffle, swap nouns, swap adjectives, replace adjectives, replace nouns) all apply.
"""

from __future__ import annotations

import os

import datasets
from PIL import Image

from degla.schema import CAPTION, IMAGE, IMAGE_PATH, negatives_features
from degla.world.shapes import WorldConfig, finetuning_config, generate


def finetuning_dataset(n_images: int = 2000, seed: int = 0, image_dir: str | None = None,
                       config: WorldConfig | None = None) -> datasets.Dataset:
    """Draw `n_images` scenes of the fine-tuning distribution (default `finetuning_config()`).

    Args:
        n_images: number of images; the dataset has `n_images * config.captions_per_image` rows.
        seed: the same seed gives the same images and captions.
        image_dir: if given, the images are written there as PNG and the rows carry `image_path`
            (absolute); otherwise the images are stored in the dataset as PNG bytes.
        config: the distribution (defaults to `finetuning_config()`).
    """
    config = config or finetuning_config()
    sample = generate(config, n_images, seed)
    captions, images, paths = [], [], []
    if image_dir is not None:
        os.makedirs(image_dir, exist_ok=True)
    for i, (image, scene_caps) in enumerate(zip(sample.images, sample.captions)):
        pil = Image.fromarray(image)
        path = None
        if image_dir is not None:
            path = os.path.abspath(os.path.join(image_dir, f"world_{seed}_{i:06d}.png"))
            pil.save(path, compress_level=1)
        for caption in scene_caps:
            captions.append(caption)
            images.append(path if path is not None else pil)
            paths.append(path)
    columns = {CAPTION: captions, IMAGE: images}
    features = negatives_features(rules=(), image=IMAGE, with_sources=False)
    if image_dir is not None:
        columns[IMAGE_PATH] = paths
        features[IMAGE_PATH] = datasets.Value("string")
    return datasets.Dataset.from_dict(columns, features=features)
