"""Where the evaluation data lives: one field (and one command-line option) per data location."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields


@dataclass
class EvalDataConfig:
    """Data locations for `evaluate_model` / `scripts/evaluate_clip.py`, one field (and option) per location.

    A task asked for by name must have its data; with `--tasks all`, the tasks whose data is given run. A part of
    a task whose data is not given (e.g. VG-Attribution without its file) is reported as not run, with the option
    that would enable it. A path that does not exist is always an error, raised before any model is loaded."""

    # SugarCrepe
    sugarcrepe_dir: str | None = field(default=None, metadata={"help": "SugarCrepe annotation folder holding "
        "add_att.json, add_obj.json, replace_att.json, replace_obj.json, replace_rel.json, swap_att.json, "
        "swap_obj.json (each: {id: {filename, caption, negative_caption}})."})
    coco_val2017_dir: str | None = field(default=None, metadata={"help": "Folder of COCO val2017 images "
        "(000000xxxxxx.jpg): SugarCrepe images, and VALSE plurals/relations unless --valse_coco2017_dir is set."})
    # VALSE
    valse_dir: str | None = field(default=None, metadata={"help": "VALSE annotation folder (existence.json, "
        "plurals.json, counting-*.json, relations.json, action-replacement.json, actant-swap.json, "
        "coreference-*.json, foil-it.json)."})
    valse_visual7w_dir: str | None = field(default=None, metadata={"help": "Visual7W images (v7w_<id>.jpg): "
        "VALSE existence and counting."})
    valse_coco2017_dir: str | None = field(default=None, metadata={"help": "COCO 2017 images for VALSE plurals "
        "and relations (default: --coco_val2017_dir)."})
    valse_swig_dir: str | None = field(default=None, metadata={"help": "SWiG images (<verb>_<n>.jpg): VALSE "
        "action-replacement and actant-swap."})
    valse_visdial_dir: str | None = field(default=None, metadata={"help": "VisDial v1.0 images, both "
        "COCO_train2014_*.jpg and VisualDialog_val2018_*.jpg in one folder: VALSE coreference."})
    valse_coco2014_dir: str | None = field(default=None, metadata={"help": "COCO val2014 images "
        "(COCO_val2014_*.jpg): VALSE foil-it."})
    # ARO
    aro_dir: str | None = field(default=None, metadata={"help": "ARO folder holding visual_genome_relation.json "
        "and/or visual_genome_attribution.json."})
    aro_image_dir: str | None = field(default=None, metadata={"help": "VG-Relation/VG-Attribution images "
        "(default: <aro_dir>/images)."})
    coco_karpathy_test_json: str | None = field(default=None, metadata={"help": "COCO Karpathy test split in "
        "BLIP's coco_karpathy_test.json format ([{image, caption: [5 captions]}]): ARO COCO-Order and COCO "
        "retrieval."})
    coco_image_root: str | None = field(default=None, metadata={"help": "Root that the `image` paths of "
        "--coco_karpathy_test_json are relative to (e.g. the folder holding val2014/)."})
    flickr30k_test_json: str | None = field(default=None, metadata={"help": "Flickr30k test split in BLIP's "
        "flickr30k_test.json format: ARO Flickr30k-Order and Flickr30k retrieval."})
    flickr30k_image_root: str | None = field(default=None, metadata={"help": "Root that the `image` paths of "
        "--flickr30k_test_json are relative to."})
    order_pos_lexicon: str | None = field(default=None, metadata={"help": "JSON {\"nouns\": [...], "
        "\"adjectives\": [...]} used instead of spaCy's en_core_web_sm to find nouns/adjectives for the ARO "
        "order perturbations (needed when spaCy is not installed)."})
    # zero-shot classification / linear probe
    zeroshot_datasets: list[str] = field(default_factory=list, metadata={"help": "Datasets for zero-shot and "
        "linear probe (default: every dataset given in --zeroshot_sources). Known names: cifar10 cifar100 "
        "food101 pets flowers sun397 cars dtd caltech101 aircraft imagenet; `all` = the 11 known ones."})
    zeroshot_sources: list[str] = field(default_factory=list, metadata={"help": "NAME=SOURCE items. SOURCE is a "
        "local image folder (<root>/<class>/*.png, or <root>/train/<class>/ and <root>/test/<class>/, optional "
        "<root>/zeroshot.json {classnames, templates, metric}) or hf:HUB_ID[:TEST_SPLIT[:IMAGE_COLUMN"
        "[:LABEL_COLUMN[:TRAIN_SPLIT]]]] (a `datasets` hub dataset). Known names without a source use the "
        "hub dataset listed in degla/eval/data/zeroshot_datasets.json (network)."})

    # beyond the paper: Winoground, SugarCrepe++, VL-CheckList
    winoground_dir: str | None = field(default=None, metadata={"help": "Local copy of Winoground: the release "
        "layout (examples.jsonl + images/<name>.png, or under data/), a datasets save_to_disk folder, or parquet "
        "files, with the Hub dataset's columns (id, image_0, image_1, caption_0, caption_1, tag, secondary_tag, "
        "num_main_preds, collapsed_tag)."})
    winoground_hub_id: str | None = field(default=None, metadata={"help": "Hub dataset of Winoground, "
        "e.g. facebook/winoground (gated: accept its licence and log in; network). Instead of --winoground_dir."})
    sugarcrepe_pp_dir: str | None = field(default=None, metadata={"help": "SugarCrepe++ annotation folder "
        "(the scpp repository's data/: replace_att.json, replace_obj.json, replace_rel.json, swap_att.json, "
        "swap_obj.json, each [{id, filename, caption, caption2, negative_caption}]); images from "
        "--coco_val2017_dir."})
    vl_checklist_dir: str | None = field(default=None, metadata={"help": "VL-CheckList annotations: the "
        "repository's folder or its data/ (Object/..., Attribute/..., Relation/... JSON lists of "
        "[image_path, {POS, NEG}])."})
    vl_checklist_vg_dir: str | None = field(default=None, metadata={"help": "VL-CheckList's vg/ image folder "
        "(VG_100K/, VG_100K_2/): the VG and VAW files."})
    vl_checklist_swig_dir: str | None = field(default=None, metadata={"help": "VL-CheckList's swig/ image "
        "folder (SWiG images_512): the SWiG files."})
    vl_checklist_hake_dir: str | None = field(default=None, metadata={"help": "VL-CheckList's hake/ image "
        "folder (hake_images_20190730/, hico_20160224_det/, openimages/, ...): the HAKE files."})
    vl_checklist_max_num: int = field(default=2000, metadata={"help": "MAX_NUM of VL-CheckList's config (2000 "
        "in its sample config and in DCI's): the first MAX_NUM/2 entries with an image of each file are scored, "
        "as its ITC evaluation does; 0 scores every entry."})

    # the field's compositional suite (--tasks compositional)
    whatsup_dir: str | None = field(default=None, metadata={"help": "What'sUp data folder, as the official code "
        "reads it (its data/): controlled_images_dataset.json + controlled_images/, controlled_clevr_dataset.json "
        "+ controlled_clevr/, coco_qa_{one,two}_obj.json + val2017/ (else --coco_val2017_dir), "
        "vg_qa_{one,two}_obj.json + vg_images/."})
    crepe_dir: str | None = field(default=None, metadata={"help": "CREPE data (RAIVNLab/CREPE's data/ with its zips "
        "unpacked): prod_hard_negatives/<atom|swap|negate>/prod_vg_hard_negs_<type>_complexity_<4..12>.csv and/or "
        "syst_hard_negatives/syst_vg_hard_negs_<seen|unseen>_compounds_in_<dataset>.csv."})
    crepe_vg_dir: str | None = field(default=None, metadata={"help": "Visual Genome images for CREPE: the folder "
        "holding VG_100K/ and VG_100K_2/."})
    crepe_train_dataset: str | None = field(default=None, metadata={"help": "cc12m, yfcc or laion: the model's "
        "pretraining set, whose CREPE systematicity files are scored (the authors evaluate systematicity only on "
        "models pretrained on these); without it only productivity runs."})
    mmvp_vlm_dir: str | None = field(default=None, metadata={"help": "MMVP-VLM benchmark folder (the Hub dataset "
        "MMVP/MMVP_VLM's files): Questions.csv beside 'MLLM_VLM Images/' (or MMVP_VLM_Images/) with one folder per "
        "Type."})
    mmvp_vlm_hub_id: str | None = field(default=None, metadata={"help": "Hub dataset of MMVP-VLM, e.g. MMVP/MMVP_VLM "
        "(its files downloaded with huggingface_hub; network). Instead of --mmvp_vlm_dir."})
    bivlc_dir: str | None = field(default=None, metadata={"help": "Local copy of BiVLC: a datasets save_to_disk "
        "folder or parquet files with the Hub dataset's columns (image, caption, negative_caption, negative_image, "
        "type, subtype)."})
    bivlc_hub_id: str | None = field(default=None, metadata={"help": "Hub dataset of BiVLC, e.g. imirandam/BiVLC "
        "(split test; network). Instead of --bivlc_dir."})
    spec_dir: str | None = field(default=None, metadata={"help": "SPEC data: the folder holding its six subset "
        "folders (absolute_size, relative_size, absolute_spatial, relative_spatial, existence, count; each with "
        "image2text.json and text2image.json), as the Hub dataset wjpoom/SPEC's data.zip unpacks."})
    spec_hub_id: str | None = field(default=None, metadata={"help": "Hub dataset of SPEC, e.g. wjpoom/SPEC: its "
        "data.zip downloaded and unpacked into degla's cache (network). Instead of --spec_dir."})
    colorswap_dir: str | None = field(default=None, metadata={"help": "Local copy of ColorSwap: a datasets "
        "save_to_disk folder or parquet files with the Hub dataset's columns (id, image_1, image_2, caption_1, "
        "caption_2, image_source, caption_source)."})
    colorswap_hub_id: str | None = field(default=None, metadata={"help": "Hub dataset of ColorSwap, e.g. "
        "stanfordnlp/colorswap (gated: accept its terms and log in; split test; network). Instead of "
        "--colorswap_dir."})

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, str) and value:
                setattr(self, f.name, os.path.expanduser(value))
        if self.valse_coco2017_dir is None:
            self.valse_coco2017_dir = self.coco_val2017_dir
        if self.aro_image_dir is None and self.aro_dir is not None:
            self.aro_image_dir = os.path.join(self.aro_dir, "images")

    @classmethod
    def from_dict(cls, data: dict) -> EvalDataConfig:
        """Build from a plain dict, rejecting unknown keys with the list of valid ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown data option(s) {unknown}; valid options: {sorted(known)}")
        return cls(**data)
