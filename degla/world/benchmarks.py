"""The world's benchmarks, written in the file formats of the real ones so the same evaluation code reads them.

`write_benchmarks(root)` writes:

- `sugarcrepe/{add_att,add_obj,replace_att,replace_obj,replace_rel,swap_att,swap_obj}.json`: SugarCrepe's
  format, `{id: {"filename", "caption", "negative_caption"}}`, images in `images/`. Every negative is derived
  from the scene structure and checked false (`caption_is_true`), every caption checked true.
- `karpathy_test.json`: BLIP's Karpathy-split format `[{"image": "images/<name>.png", "caption": [...]}]`, for
  retrieval and ARO's COCO/Flickr-Order perturbations.
- `visual_genome_relation.json` / `visual_genome_attribution.json`: ARO's VG-Relation / VG-Attribution
  format (`image_path` relative to `images/`, a whole-image bbox, `true_caption`, `false_caption`,
  `relation_name` or `attributes`).
- `zeroshot_<name>/{train,test}/<class_folder>/*.png` + `zeroshot_<name>/zeroshot.json`, the harness's
  format (`{"classnames": {folder: name}, "templates": ["a {c}.", ...], "metric": "accuracy"}`):
  `colour_shape` (single objects, the colour x shape combinations seen in training) and `heldout`
  (the `HELD_OUT` combinations, never seen in any training caption).

Images of the compositional benchmarks come from the fine-tuning distribution (in-domain, as COCO images
are for SugarCrepe) with a different seed; zero-shot images from the broad pretraining distribution (the
"general ability" a fine-tune may forget).
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
from PIL import Image

from degla.world.shapes import (COLOURS, HELD_OUT, RELATIONS, SHAPES, SIZES, Scene, WorldConfig, canonical_caption,
                                caption_is_true, finetuning_config, pretraining_config, render, sample_scenes,
                                scene_captions)

SUGARCREPE_TASKS: tuple[str, ...] = (
    "add_att", "add_obj", "replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj")
ZEROSHOT_TEMPLATES: tuple[str, ...] = (
    "a {}.", "a photo of a {}.", "a picture of a {}.", "an image of a {}.", "there is a {}.")


def _other(rng: np.random.Generator, values, exclude) -> str:
    choices = [v for v in values if v not in set(exclude)]
    return choices[int(rng.integers(len(choices)))]


def _with(obj, **changes):
    return dataclasses.replace(obj, **changes)


def sugarcrepe_pair(task: str, scene: Scene, rng: np.random.Generator) -> tuple[str, str] | None:
    """(caption, negative_caption) for one SugarCrepe task on a two-object scene, or None if the scene does
    not allow it (e.g. swap_att on two objects of the same colour). The caption is true, the negative false."""
    a, b = scene.objects[:2]
    rel = scene.relation
    colours = {o.colour for o in scene.objects}
    shapes = {o.shape for o in scene.objects}
    i = int(rng.integers(2))
    objs = [a, b]
    caption = canonical_caption((a, b), rel)
    if task == "replace_att":  # an attribute replaced by one the scene does not show there
        if rng.random() < 0.3:
            objs[i] = _with(objs[i], size=_other(rng, SIZES, [objs[i].size]))
        else:
            objs[i] = _with(objs[i], colour=_other(rng, COLOURS, colours))
        negative = canonical_caption(tuple(objs), rel)
    elif task == "replace_obj":  # a shape replaced by one absent from the scene
        objs[i] = _with(objs[i], shape=_other(rng, SHAPES, shapes))
        negative = canonical_caption(tuple(objs), rel)
    elif task == "replace_rel":  # any other relation (exactly one holds by construction)
        negative = canonical_caption((a, b), _other(rng, RELATIONS, [rel]))
    elif task == "swap_att":  # the two objects exchange their colours (or sizes)
        if a.colour != b.colour:
            negative = canonical_caption((_with(a, colour=b.colour), _with(b, colour=a.colour)), rel)
        elif a.size != b.size:
            negative = canonical_caption((_with(a, size=b.size), _with(b, size=a.size)), rel)
        else:
            return None
    elif task == "swap_obj":  # the two objects exchange their shapes, attributes stay in place
        if a.shape == b.shape:
            return None
        negative = canonical_caption((_with(a, shape=b.shape), _with(b, shape=a.shape)), rel)
    elif task == "add_att":  # the caption omits a colour; the negative adds a wrong one
        caption = f"{a.phrase(colour=i != 0)} {rel} {b.phrase(colour=i != 1)}"
        objs[i] = _with(objs[i], colour=_other(rng, COLOURS, colours))
        negative = canonical_caption(tuple(objs), rel)
    elif task == "add_obj":  # the negative adds an object whose shape is absent from the scene
        extra = _with(a, shape=_other(rng, SHAPES, shapes), colour=_other(rng, COLOURS, []),
                      size=_other(rng, SIZES, []), texture="plain")
        negative = canonical_caption((a, b, extra), rel)
    else:
        raise ValueError(f"unknown SugarCrepe task {task!r}; expected one of {SUGARCREPE_TASKS}")
    if negative == caption or not caption_is_true(scene, caption) or caption_is_true(scene, negative):
        return None
    return caption, negative


def sugarcrepe_items(n_scenes: int = 300, seed: int = 1000, config: WorldConfig | None = None):
    """Scenes, their images and SugarCrepe pairs {task: [(scene_index, caption, negative), ...]}."""
    config = config or finetuning_config()
    scenes = sample_scenes(config, n_scenes, seed)
    rng = np.random.default_rng([seed, 2])
    pairs = {task: [] for task in SUGARCREPE_TASKS}
    for idx, scene in enumerate(scenes):
        for task in SUGARCREPE_TASKS:
            pair = sugarcrepe_pair(task, scene, rng)
            if pair is not None:
                pairs[task].append((idx, *pair))
    return scenes, render(scenes, config, seed=seed + 1), pairs


def single_object_classes(combinations, n_per_class: int, seed: int, config: WorldConfig | None = None):
    """Images (N, H, W, 3) of single objects and their class index into `combinations` [(colour, shape)]."""
    config = config or pretraining_config()
    images, labels = [], []
    for k, (colour, shape) in enumerate(combinations):
        cls_config = dataclasses.replace(config, colours=(colour,), shapes=(shape,), exclude=(),
                                         num_objects_probs=(1.0, 0.0, 0.0))
        scenes = sample_scenes(cls_config, n_per_class, seed + 7919 * k)
        images.append(render(scenes, cls_config, seed=seed + 7919 * k + 1))
        labels += [k] * n_per_class
    return np.concatenate(images), np.array(labels)


def seen_combinations() -> list[tuple[str, str]]:
    """The colour x shape combinations of the training distributions (all but `HELD_OUT`)."""
    return [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in set(HELD_OUT)]


def _save(images: np.ndarray, paths: list[str]) -> None:
    for image, path in zip(images, paths):
        Image.fromarray(image).save(path, compress_level=1)


def write_benchmarks(root: str, seed: int = 1000, n_sugarcrepe: int = 300, n_retrieval: int = 500, n_aro: int = 2400,
                     n_zeroshot_train: int = 16, n_zeroshot_test: int = 16) -> dict[str, int]:
    """Write every benchmark of the world under `root` (see the module docstring). Returns item counts."""
    images_dir = os.path.join(root, "images")
    os.makedirs(images_dir, exist_ok=True)
    counts: dict[str, int] = {}

    # SugarCrepe
    scenes, images, pairs = sugarcrepe_items(n_sugarcrepe, seed)
    names = [f"sugarcrepe_{i:05d}.png" for i in range(len(scenes))]
    _save(images, [os.path.join(images_dir, n) for n in names])
    os.makedirs(os.path.join(root, "sugarcrepe"), exist_ok=True)
    for task, items in pairs.items():
        data = {str(k): {"filename": names[idx], "caption": cap, "negative_caption": neg}
                for k, (idx, cap, neg) in enumerate(items)}
        with open(os.path.join(root, "sugarcrepe", f"{task}.json"), "w") as f:
            json.dump(data, f, indent=1)
        counts[f"sugarcrepe/{task}"] = len(data)

    # Karpathy-format retrieval / order set
    config = finetuning_config()
    scenes = sample_scenes(config, n_retrieval, seed + 1)
    names = [f"retrieval_{i:05d}.png" for i in range(len(scenes))]
    _save(render(scenes, config, seed=seed + 2), [os.path.join(images_dir, n) for n in names])
    rng = np.random.default_rng([seed, 3])
    karpathy = [{"image": f"images/{n}", "caption": scene_captions(s, config, rng)} for s, n in zip(scenes, names)]
    # ARO VG-Relation / VG-Attribution: a larger pool, since ARO's macro accuracy only counts attribute pairs
    # with >= 25 examples (56 ordered colour pairs here)
    scenes = sample_scenes(config, n_aro, seed + 4)
    names = [f"aro_{i:05d}.png" for i in range(len(scenes))]
    _save(render(scenes, config, seed=seed + 5), [os.path.join(images_dir, n) for n in names])
    size = config.image_size
    relation, attribution = [], []
    for s, n in zip(scenes, names):
        a, b = s.objects
        box = {"bbox_x": 0, "bbox_y": 0, "bbox_w": size, "bbox_h": size}
        noun_a, noun_b = f"{a.colour} {a.shape}", f"{b.colour} {b.shape}"
        if noun_a != noun_b:
            relation.append({"image_path": n, **box, "relation_name": s.relation,
                             "true_caption": f"the {noun_a} is {s.relation} the {noun_b}",
                             "false_caption": f"the {noun_b} is {s.relation} the {noun_a}"})
        if a.colour != b.colour and a.shape != b.shape:
            attribution.append({"image_path": n, **box, "attributes": [a.colour, b.colour],
                                "true_caption": f"the {noun_a} and the {noun_b}",
                                "false_caption": f"the {b.colour} {a.shape} and the {a.colour} {b.shape}"})
    for name, data in (("karpathy_test.json", karpathy), ("visual_genome_relation.json", relation),
                       ("visual_genome_attribution.json", attribution)):
        with open(os.path.join(root, name), "w") as f:
            json.dump(data, f, indent=1)
        counts[name] = len(data)

    # Zero-shot / linear-probe ImageFolders
    for name, combos in (("colour_shape", seen_combinations()), ("heldout", list(HELD_OUT))):
        combos = sorted(combos, key=lambda cs: f"{cs[0]}_{cs[1]}")
        classnames = [f"{c} {s}" for c, s in combos]
        folders = [f"{c}_{s}" for c, s in combos]
        base = os.path.join(root, f"zeroshot_{name}")
        for split, n_per, split_seed in (("train", n_zeroshot_train, seed + 10), ("test", n_zeroshot_test, seed + 20)):
            images, labels = single_object_classes(combos, n_per, split_seed)
            for folder in folders:
                os.makedirs(os.path.join(base, split, folder), exist_ok=True)
            _save(images, [os.path.join(base, split, folders[y], f"{i:05d}.png") for i, y in enumerate(labels)])
            counts[f"zeroshot_{name}/{split}"] = len(labels)
        with open(os.path.join(base, "zeroshot.json"), "w") as f:  # the evaluation harness's class/prompt file
            meta = {"classnames": dict(zip(folders, classnames)),
                    "templates": [t.replace("{}", "{c}") for t in ZEROSHOT_TEMPLATES], "metric": "accuracy"}
            json.dump(meta, f, indent=1)
    return counts
