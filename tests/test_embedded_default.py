"""The README's main job, run as a user runs it (subprocesses, no arguments). The miniature study's smoke test is in
tests/test_study.py."""

import json
import os
import subprocess
import sys

import pytest
from transformers import CLIPModel, CLIPProcessor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(args, cwd, home):
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, check=True, capture_output=True, text=True)


@pytest.mark.slow
def test_train_then_evaluate_with_no_arguments(tmp_path):
    out = run_script([os.path.join(ROOT, "scripts", "train.py")], tmp_path, tmp_path / "home")
    export = tmp_path / "runs" / "degla-world" / "clip"
    assert f"Drop-in CLIP checkpoint: {os.path.join('runs', 'degla-world', 'clip')}" in out.stdout
    model, info = CLIPModel.from_pretrained(export, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    CLIPProcessor.from_pretrained(export)
    card = (export / "README.md").read_text()
    assert "2000 captions, 0 dropped" in card and "lambda_distill" in card

    out = run_script([os.path.join(ROOT, "scripts", "evaluate_clip.py")], tmp_path, tmp_path / "home")
    assert f"scoring {os.path.join('runs', 'degla-world', 'clip')}" in out.stdout
    results = json.loads((tmp_path / "eval_results" / "results.json").read_text())
    assert set(results["sugarcrepe"]) >= {"add_att", "swap_obj", "replace", "swap", "add", "avg"}
    assert set(results["zeroshot"]) == {"colour_shape", "heldout", "avg"}
    assert {"vg_relation", "vg_attribution", "coco_order"} <= set(results["aro"])
    assert results["zeroshot"]["colour_shape"] > 30  # far above chance (1.8 %): the fine-tune kept recognition
