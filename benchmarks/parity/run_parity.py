"""Parity of the evaluation harness with the official evaluation code, on a seeded random open_clip ViT-B/32 and its
conversion by `scripts/convert_openclip_to_hf.py` (no pretrained weights are needed, none are fetched).

The reference side is the real thing where a library exists and a plain re-implementation of the official loop
where it does not (tests/official_loops.py):
- pixels: open_clip's evaluation transform (torchvision) vs the exported processor read by `OpenCLIPImageProcessor`
  (and, for contrast, by transformers' own `CLIPImageProcessorPil`), per real photo;
- tokens: open_clip's tokenizer vs the harness's `clean_text` + the exported tokenizer, on every benchmark text of
  the shipped fixtures;
- SugarCrepe: the `main_eval.py` loop through open_clip (model, transform, tokenizer), pair by pair, vs the harness
  on the converted checkpoint, per item, all 7 subsets of the shipped sample;
- VALSE and ARO (VG-Relation, VG-Attribution, COCO-Order): the official loops through open_clip vs the harness;
- zero-shot classification (top-1, mean per-class recall) and retrieval (R@1/5/10 both ways): clip_benchmark's
  `zeroshot_classification.evaluate` / `zeroshot_retrieval.evaluate` with open_clip vs the harness, on a small
  ImageFolder of real photo crops and a Karpathy-format caption file;
- speed: the official SugarCrepe loop vs the harness (cold, no feature cache) on the same model and data.

Needs open_clip, clip_benchmark and scikit-image (`pip install -e ".[parity]"`), and so torchvision, in an
environment whose torch has a matching torchvision build, e.g.:

    python -m venv parity-venv && parity-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 -e ".[parity]"
    parity-venv/bin/pip install --no-deps clip-anytorch   # OpenAI's BPE vocabulary, for the converter
    parity-venv/bin/python benchmarks/parity/run_parity.py --output_dir parity-results

Writes `parity.json` and `parity.md` (the table of docs/evaluation.md) to `--output_dir`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]  # degla from this checkout; the test references

import open_clip  # noqa: E402
from PIL import Image  # noqa: E402
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD  # noqa: E402

from degla.eval import TASKS, CLIPFeatureEncoder, EvalDataConfig, OpenCLIPImageProcessor  # noqa: E402
from degla.eval.tasks import aro, valse  # noqa: E402
from degla.text import clean_text  # noqa: E402

import official_loops as official  # noqa: E402
from eval_helpers import (ORDER_LEXICON, SHORT_CAPTIONS, real_photos, save_photos, synthetic_vg_records,  # noqa: E402
                          torchvision_clip_pixels)

FIXTURES = os.path.join(ROOT, "tests", "fixtures")
ZEROSHOT_CLASSES = {"astronaut": "astronaut", "cat": "cat", "coffee": "cup of coffee", "motorcycle": "motorcycle",
                    "rocket": "rocket"}
VALSE_PER_INSTRUMENT = 8  # the first records of each instrument (those with mturk.caption >= 2 are scored)
ZEROSHOT_TEMPLATES = ["a photo of a {c}.", "a blurry photo of a {c}.", "a photo of the big {c}.", "itap of a {c}."]


class OpenCLIPModel:
    """An open_clip model driven as the official scripts drive it: its transform on the PIL image as opened, its
    tokenizer, normalised features."""

    def __init__(self, model, preprocess, tokenizer):
        self.model, self.preprocess, self.tokenizer = model, preprocess, tokenizer

    @torch.no_grad()
    def encode_image(self, images):
        return self.model.encode_image(torch.stack([self.preprocess(im) for im in images]), normalize=True)

    @torch.no_grad()
    def encode_text(self, texts):
        return self.model.encode_text(self.tokenizer(texts), normalize=True)


def build_models(work: str, seed: int):
    """A seeded random open_clip ViT-B/32 (QuickGELU, OpenAI's architecture), saved as a `.pt` state dict and
    converted with the project's converter script, as a user converts a released checkpoint."""
    torch.manual_seed(seed)
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32-quickgelu", pretrained=None)
    with torch.no_grad():  # move norms and biases away from their trivial initial values
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    model.eval()
    checkpoint = os.path.join(work, "epoch_5.pt")
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, checkpoint)
    export = os.path.join(work, "vitb32-random-hf")
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "convert_openclip_to_hf.py"), "--checkpoint",
                    checkpoint, "--output_dir", export], check=True, env={**os.environ, "PYTHONPATH": ROOT})
    tokenizer = open_clip.get_tokenizer("ViT-B-32-quickgelu")
    return OpenCLIPModel(model, preprocess, tokenizer), export


def build_data(work: str) -> tuple[EvalDataConfig, dict]:
    """Every benchmark as local files, images from real photos."""
    sugar = os.path.join(FIXTURES, "sugarcrepe-sample")
    files = sorted({r["filename"] for n in official.SUGARCREPE_FILES
                    for r in json.load(open(os.path.join(sugar, f"{n}.json"))).values()})
    save_photos(os.path.join(work, "coco2017"), files)

    valse_dir, image_dirs, valse_files = os.path.join(work, "valse"), {}, {}
    os.makedirs(valse_dir)
    for name in valse.INSTRUMENTS:
        with gzip.open(os.path.join(FIXTURES, "valse", f"{name}.json.gz"), "rt", encoding="utf-8") as f:
            records = dict(list(json.load(f).items())[:VALSE_PER_INSTRUMENT])
        json.dump(records, open(os.path.join(valse_dir, f"{name}.json"), "w"))
        for r in records.values():
            image_dirs[r["dataset"]] = os.path.join(work, valse.SOURCES[r["dataset"]])
            valse_files.setdefault(image_dirs[r["dataset"]], set()).add(r["image_file"])
    for folder, names in valse_files.items():
        save_photos(folder, sorted(names))

    photos = real_photos()
    used = save_photos(os.path.join(work, "aro", "images"), [f"vg{i}.jpg" for i in range(len(photos))])
    relations, attribution = synthetic_vg_records({f: photos[n].size for f, n in used.items()})
    json.dump(relations, open(os.path.join(work, "aro", "visual_genome_relation.json"), "w"))
    json.dump(attribution, open(os.path.join(work, "aro", "visual_genome_attribution.json"), "w"))

    positives = [r["caption"] for n in official.SUGARCREPE_FILES
                 for r in json.load(open(os.path.join(sugar, f"{n}.json"))).values()]
    captions = [positives[5 * i : 5 * i + 5] for i in range(len(photos) - 2)] + [SHORT_CAPTIONS, SHORT_CAPTIONS[::-1]]
    karpathy = [{"image": f"val2014/{i}.jpg", "caption": caps} for i, caps in enumerate(captions)]
    save_photos(os.path.join(work, "coco", "val2014"), [f"{i}.jpg" for i in range(len(karpathy))])
    json.dump(karpathy, open(os.path.join(work, "coco", "karpathy_test.json"), "w"))
    json.dump(ORDER_LEXICON, open(os.path.join(work, "lexicon.json"), "w"))

    zs = os.path.join(work, "photo_classes")  # crops of one photo per class, of varied shapes
    for folder, source in (("astronaut", "astronaut"), ("cat", "chelsea"), ("coffee", "coffee"),
                           ("motorcycle", "motorcycle"), ("rocket", "rocket")):
        os.makedirs(os.path.join(zs, folder))
        image = photos[source].convert("RGB")
        w, h = image.size
        for i, (fx, fy, fw, fh) in enumerate(((0, 0, 1, 1), (0.1, 0, 0.6, 1), (0, 0.2, 1, 0.5), (0.3, 0.3, 0.5, 0.5),
                                              (0.2, 0, 0.45, 0.9), (0, 0, 0.8, 0.7))):
            box = (int(fx * w), int(fy * h), int((fx + fw) * w), int((fy + fh) * h))
            image.crop(box).save(os.path.join(zs, folder, f"{i}.jpg"), quality=95)
    json.dump({"classnames": ZEROSHOT_CLASSES, "templates": ZEROSHOT_TEMPLATES, "metric": "accuracy"},
              open(os.path.join(zs, "zeroshot.json"), "w"))

    data = EvalDataConfig(sugarcrepe_dir=sugar, coco_val2017_dir=os.path.join(work, "coco2017"), valse_dir=valse_dir,
                          **{valse.SOURCES[d]: folder for d, folder in image_dirs.items()},
                          aro_dir=os.path.join(work, "aro"),
                          coco_karpathy_test_json=os.path.join(work, "coco", "karpathy_test.json"),
                          coco_image_root=os.path.join(work, "coco"),
                          order_pos_lexicon=os.path.join(work, "lexicon.json"),
                          zeroshot_sources=[f"photo_classes={zs}"])
    return data, {"image_dirs": image_dirs, "relations": relations, "attribution": attribution, "captions": captions,
                  "zeroshot_root": zs}


def pixel_parity(reference: OpenCLIPModel, export: str) -> dict:
    from transformers import CLIPImageProcessorPil, CLIPProcessor

    saved = CLIPProcessor.from_pretrained(export).image_processor.to_dict()
    ours, stock = OpenCLIPImageProcessor.from_dict(saved), CLIPImageProcessorPil(**saved)
    std = torch.tensor(OPENAI_CLIP_STD).view(3, 1, 1)
    out = {}
    for name, image in real_photos().items():
        ref = reference.preprocess(image)  # open_clip's transform on the image as opened (RGB or L)
        diff = lambda p: float(((torch.from_numpy(p(images=image.convert("RGB"), return_tensors="np")  # noqa: E731
                                                  ["pixel_values"][0]) - ref).abs() * std).max())
        written_out = torch.from_numpy(torchvision_clip_pixels(image, 224, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD))
        out[name] = {"size": list(image.size), "mode": image.mode, "ours": diff(ours), "transformers": diff(stock),
                     "test_reference": float(((written_out - ref).abs() * std).max())}
    return out


def token_parity(reference: OpenCLIPModel, export: str, data: EvalDataConfig) -> dict:
    from transformers import CLIPProcessor

    tokenizer = CLIPProcessor.from_pretrained(export).tokenizer
    texts = []
    for folder, fields in ((data.sugarcrepe_dir, ("caption", "negative_caption")), (None, ("caption", "foil"))):
        sources = ([json.load(open(os.path.join(folder, f"{n}.json"))) for n in official.SUGARCREPE_FILES] if folder
                   else [json.load(gzip.open(os.path.join(FIXTURES, "valse", f"{n}.json.gz"), "rt"))
                         for n in valse.INSTRUMENTS])
        texts += [r[f] for d in sources for r in d.values() for f in fields]
    expected = reference.tokenizer(texts)
    mismatches = {"harness": 0, "without_clean_text": 0}
    for key, inputs in (("harness", [clean_text(t) for t in texts]), ("without_clean_text", texts)):
        ids = tokenizer(inputs, padding="max_length", max_length=77, truncation=True, return_tensors="pt")["input_ids"]
        eot = (ids == tokenizer.eos_token_id).int().argmax(1)  # the first eot; open_clip pads with 0 after it
        ids[torch.arange(ids.shape[1])[None, :] > eot[:, None]] = 0
        mismatches[key] = int((ids != expected).any(1).sum())
    return {"texts": len(texts), "mismatching_texts": mismatches}


def _row(task, reference, ref_value, our_value, disagreements=None, max_score_diff=None):
    return {"task": task, "reference": reference, "reference_figure": round(ref_value, 2),
            "our_figure": round(our_value, 2), "difference": round(our_value - ref_value, 2),
            "disagreements": disagreements, "max_score_difference": max_score_diff}


def compare_multiple_choice(reference: OpenCLIPModel, encoder, data, info) -> tuple[list[dict], dict]:
    rows, timing = [], {}
    start = time.perf_counter()
    sugar_ref = official.sugarcrepe_main_eval(reference, data.sugarcrepe_dir, data.coco_val2017_dir)
    timing["official_sugarcrepe_loop_s"] = time.perf_counter() - start
    encoder.stats.clear()
    start = time.perf_counter()
    sugar = TASKS["sugarcrepe"].run(encoder, data)
    timing["harness_sugarcrepe_s"] = time.perf_counter() - start
    for subset, ref_rows in sugar_ref.items():
        ours = sugar.items[subset]
        diff = float((ours["scores"] - torch.tensor([[a, b] for _, a, b in ref_rows])).abs().max())
        bad = sum(a != bool(c) for a, (c, _, _) in zip(ours["correct"], ref_rows))
        rows.append(_row(f"SugarCrepe {subset}", "official main_eval.py loop, open_clip",
                         100 * np.mean([c for c, _, _ in ref_rows]), sugar.scores[subset],
                         f"{bad}/{len(ref_rows)}", diff))

    valse_ref = official.valse_pairwise(reference, data.valse_dir, info["image_dirs"], valse.INSTRUMENTS)
    valse_ours = TASKS["valse"].run(encoder, data)
    ref_flat = [r for name in valse.INSTRUMENTS for r in valse_ref[name]]
    ours_correct = [c for name in valse.INSTRUMENTS for c in valse_ours.items[name]["correct"]]
    ours_scores = torch.cat([valse_ours.items[name]["scores"] for name in valse.INSTRUMENTS])
    rows.append(_row(f"VALSE, 11 instruments ({len(ref_flat)} validated pairs)", "official pairwise loop, open_clip",
                     100 * np.mean([c for c, _, _ in ref_flat]), 100 * np.mean(ours_correct),
                     f"{sum(a != bool(c) for a, (c, _, _) in zip(ours_correct, ref_flat))}/{len(ref_flat)}",
                     float((ours_scores - torch.tensor([[a, b] for _, a, b in ref_flat])).abs().max())))

    ours = TASKS["aro"].run(encoder, data)
    proto = aro.aro_protocol()
    for name, records, kwargs in (("vg_relation", info["relations"], {"excluded": proto["excluded_relations"]}),
                                  ("vg_attribution", info["attribution"],
                                   {"min_count": proto["vg_attribution_min_group_size"]})):
        scores = official.aro_retrieval_scores_batched(reference, official.aro_vg_cases(records, data.aro_image_dir))
        correct = official.aro_vg_correct(scores)
        bad = int((np.array(ours.items[name]["correct"]) != correct).sum())
        rows.append(_row(f"ARO {name} (macro)", "ARO get_retrieval_scores_batched + evaluate_scores, open_clip",
                         100 * official.aro_macro(correct, ours.items[name]["groups"], **kwargs), ours.scores[name],
                         f"{bad}/{len(correct)}",
                         float((ours.items[name]["scores"] - torch.from_numpy(scores[:, 0])).abs().max())))
    candidates = ours.items["coco_order"]["candidates"]
    images = [Image.open(os.path.join(data.coco_image_root, f"val2014/{i}.jpg")).convert("RGB")
              for i, caps in enumerate(info["captions"]) for _ in caps]
    scores = official.aro_retrieval_scores_batched(reference, [{"image": im, "caption_options": c}
                                                               for im, c in zip(images, candidates)])
    correct = official.aro_order_correct(scores)
    ties = np.array([c[0] in c[1:] for c in candidates])
    bad = np.array(ours.items["coco_order"]["correct"]) != correct
    rows.append(_row("ARO COCO-Order (our perturbations, seed 0)",
                     "ARO get_retrieval_scores_batched + evaluate_scores, open_clip",
                     100 * correct.mean(), ours.scores["coco_order"],
                     f"{int(bad.sum())}/{len(correct)} ({int((bad & ties).sum())} on exact ties; "
                     f"{int(ties.sum())} exact ties)",
                     float((ours.items["coco_order"]["scores"] - torch.from_numpy(scores[:, 0])).abs().max())))
    return rows, timing


def compare_clip_benchmark(reference: OpenCLIPModel, encoder, data, info) -> list[dict]:
    from clip_benchmark.metrics import zeroshot_classification, zeroshot_retrieval
    from torch.utils.data import DataLoader, Dataset
    from torchvision.datasets import ImageFolder

    def accuracy(output, target, topk=(1,)):
        """clip_benchmark 1.6.2's `accuracy`, with `.item()`: its `float(<1-element array>)` fails under NumPy 2.4."""
        pred = output.topk(max(topk), 1, True, True)[1].t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))
        return [correct[:k].reshape(-1).float().sum().item() / len(target) for k in topk]

    zeroshot_classification.accuracy = accuracy
    rows = []
    folder = ImageFolder(info["zeroshot_root"], transform=reference.preprocess)
    classnames = [ZEROSHOT_CLASSES[c] for c in folder.classes]
    ref = zeroshot_classification.evaluate(reference.model, DataLoader(folder, batch_size=8), reference.tokenizer,
                                           classnames, ZEROSHOT_TEMPLATES, "cpu", amp=False)
    ours = TASKS["zeroshot"].run(encoder, data).details["photo_classes"]
    rows.append(_row("Zero-shot top-1 (5 classes, 30 photo crops)", "clip_benchmark zeroshot_classification, open_clip",
                     100 * ref["acc1"], ours["accuracy"]))
    rows.append(_row("Zero-shot mean per-class recall", "clip_benchmark zeroshot_classification, open_clip",
                     100 * ref["mean_per_class_recall"], ours["mean_per_class_accuracy"]))

    class Captions(Dataset):
        def __init__(self):
            self.entries = json.load(open(data.coco_karpathy_test_json))

        def __len__(self):
            return len(self.entries)

        def __getitem__(self, i):
            image = Image.open(os.path.join(data.coco_image_root, self.entries[i]["image"])).convert("RGB")
            return reference.preprocess(image), self.entries[i]["caption"]

    loader = DataLoader(Captions(), batch_size=8,
                        collate_fn=lambda b: (torch.stack([x for x, _ in b]), [t for _, t in b]))
    ref = zeroshot_retrieval.evaluate(reference.model, loader, reference.tokenizer, "cpu", amp=False,
                                      recall_k_list=[1, 5, 10])
    ours = TASKS["retrieval"].run(encoder, data).scores
    for k in (1, 5, 10):
        rows.append(_row(f"Retrieval image-to-text R@{k}", "clip_benchmark zeroshot_retrieval, open_clip",
                         100 * ref[f"text_retrieval_recall@{k}"], ours[f"coco_i2t_r{k}"]))
        rows.append(_row(f"Retrieval text-to-image R@{k}", "clip_benchmark zeroshot_retrieval, open_clip",
                         100 * ref[f"image_retrieval_recall@{k}"], ours[f"coco_t2i_r{k}"]))
    return rows


@torch.no_grad()
def feature_parity(reference: OpenCLIPModel, encoder) -> dict:
    images = list(real_photos().values())[:4]
    texts = ["a photo of a cat.", "“A dog” on a café terrace", "two people riding horses on a beach"]
    ours_img = encoder.model.get_image_features(
        pixel_values=encoder.image_processor(images=[im.convert("RGB") for im in images],
                                             return_tensors="pt")["pixel_values"]).pooler_output
    ours_txt = encoder.model.get_text_features(**encoder.tokenizer([clean_text(t) for t in texts], padding=True,
                                                                   return_tensors="pt")).pooler_output
    norm = torch.nn.functional.normalize
    return {"image_features_max_abs_diff": float((norm(ours_img, dim=-1) - reference.encode_image(images)).abs().max()),
            "text_features_max_abs_diff": float((norm(ours_txt, dim=-1) - reference.encode_text(texts)).abs().max())}


def markdown(report: dict) -> str:
    lines = ["| task | reference | reference figure | our figure | difference | per-item disagreements | "
             "max score difference |",
             "|---|---|---:|---:|---:|---|---:|"]
    for r in report["rows"]:
        lines.append(f"| {r['task']} | {r['reference']} | {r['reference_figure']:.2f} | {r['our_figure']:.2f} | "
                     f"{r['difference']:+.2f} | {r['disagreements'] or '-'} | "
                     + (f"{r['max_score_difference']:.1e}" if r["max_score_difference"] is not None else "-") + " |")
    t = report["speed"]
    lines += ["", f"Speed (SugarCrepe sample, 140 pairs, same model and images, CPU, no feature cache): official loop "
              f"{t['official_sugarcrepe_loop_s']:.1f} s, harness {t['harness_sugarcrepe_s']:.1f} s: "
              f"**{t['official_sugarcrepe_loop_s'] / t['harness_sugarcrepe_s']:.2f}x**.", "",
              "| photo | size (w x h) | mode | harness vs open_clip | transformers' CLIPImageProcessor vs open_clip |",
              "|---|---|---|---:|---:|"]
    for name, p in report["pixels"].items():
        lines.append(f"| {name} | {p['size'][0]}x{p['size'][1]} | {p['mode']} | {p['ours'] * 255:.3f}/255 | "
                     f"{p['transformers'] * 255:.1f}/255 |")
    tok = report["tokens"]
    lines += ["", f"Tokens: {tok['texts']} benchmark texts; token ids different from open_clip's: "
              f"{tok['mismatching_texts']['harness']} (harness), {tok['mismatching_texts']['without_clean_text']} "
              "(transformers' tokenizer without `clean_text`).",
              "Features (converted vs open_clip, normalised): "
              f"images {report['features']['image_features_max_abs_diff']:.1e}, "
              f"texts {report['features']['text_features_max_abs_diff']:.1e}."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", default="parity-results")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="degla-parity-")
    try:
        reference, export = build_models(work, args.seed)
        data, info = build_data(work)
        encoder = CLIPFeatureEncoder.from_pretrained(export, device="cpu", batch_size=args.batch_size, cache_dir=None,
                                                     show_progress=False)
        os.makedirs(args.output_dir, exist_ok=True)
        report = {"versions": {"open_clip": open_clip.__version__, "torch": torch.__version__,
                               "torchvision": __import__("torchvision").__version__,
                               "clip_benchmark": __import__("importlib.metadata").metadata.version("clip_benchmark")}}
        save = lambda: json.dump(report, open(os.path.join(args.output_dir, "parity.json"), "w"), indent=1)  # noqa: E731
        report.update(pixels=pixel_parity(reference, export), tokens=token_parity(reference, export, data),
                      features=feature_parity(reference, encoder))
        report["rows"] = compare_clip_benchmark(reference, encoder, data, info)
        save()
        rows, report["speed"] = compare_multiple_choice(reference, encoder, data, info)
        report["rows"] = rows + report["rows"]
        save()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = markdown(report)
    with open(os.path.join(args.output_dir, "parity.md"), "w") as f:
        f.write(text)
    print(text)
    worst = max((abs(r["difference"]) for r in report["rows"]), default=0.0)
    print(f"largest figure difference: {worst:.2f} points; versions: {report['versions']}")


if __name__ == "__main__":
    main()
