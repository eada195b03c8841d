"""Reader for the Karpathy-split caption files in BLIP's format (`coco_karpathy_test.json`,
`flickr30k_test.json`): a JSON list of `{"image": path relative to the image root, "caption": [captions]}`."""

from __future__ import annotations

import os

from ..encoder import ImageRef
from .common import EvalDataError, check_path, read_json, require_keys


def load_karpathy(json_path: str, image_root: str | None) -> tuple[list[ImageRef], list[list[str]]]:
    """Images (one per entry) and, for each, its list of captions."""
    if not image_root:
        raise ValueError(f"{json_path}: the image root of this caption file is not set (pass the matching "
                         "--coco_image_root / --flickr30k_image_root)")
    data = read_json(json_path, "Karpathy caption file")
    if not isinstance(data, list):
        raise ValueError(f"{json_path}: expected a JSON list of {{\"image\": ..., \"caption\": [...]}}, "
                         f"got {type(data).__name__}")
    refs, captions = [], []
    for i, rec in enumerate(data):
        require_keys(rec, ("image", "caption"), json_path, i)
        caps = [rec["caption"]] if isinstance(rec["caption"], str) else list(rec["caption"])
        if not caps or not all(isinstance(c, str) for c in caps):
            raise ValueError(f"{json_path}: entry {i} ({rec['image']}) needs a non-empty list of caption strings")
        refs.append(ImageRef(os.path.join(image_root, rec["image"])))
        captions.append(caps)
    return refs, captions


def check_karpathy(json_path: str | None, image_root: str | None, json_option: str, root_option: str) -> bool:
    """False when the caption file is not given; raises `EvalDataError` if it or its image root is missing."""
    if not check_path(json_path, json_option, kind="file"):
        return False
    if not image_root:
        raise EvalDataError(f"--{json_option} needs the folder its image paths are relative to: pass --{root_option}")
    check_path(image_root, root_option)
    return True
