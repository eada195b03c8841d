"""Shared by the training tests: a small negatives dataset and running `scripts/train.py`'s code in process (the
`tiny_model_dir` and `tiny_dataset_dir` fixtures are in conftest.py)."""

import os
import subprocess
import sys

import numpy as np
from PIL import Image
from safetensors.torch import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = ["red", "blue", "green", "small", "large", "dog", "cat", "car", "table", "tree", "left", "right"]


def _caption(rng):
    a, b, c, d = rng.choice(WORDS, 4, replace=False)
    return f"a {a} {b} next to a {c} {d}"


def make_rows(n=16, seed=0, missing_every=5):
    rng = np.random.default_rng(seed)
    rows = {"caption": [], "image": []}
    rows.update({f"neg_{r}": [] for r in ("reshuffle", "swap_nouns", "swap_adjectives", "replace_adjectives",
                                         "replace_nouns")})
    for i in range(n):
        rows["caption"].append(_caption(rng))
        rows["image"].append(Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)))
        for j, column in enumerate(c for c in rows if c.startswith("neg_")):
            rows[column].append(None if (i + j) % missing_every == 0 else _caption(rng))
    return rows


def train_args(model_dir, data_dir, out, *extra):
    return ["--model_name_or_path", model_dir, "--train_file", data_dir, "--output_dir", str(out),
            "--learning_rate", "1e-3", "--warmup_steps", "0", "--lr_scheduler_type", "constant",
            "--ema_decay", "0.5", "--logging_steps", "1", "--report_to", "none", "--seed", "7",
            "--dataloader_num_workers", "0", "--save_strategy", "no", *extra]


def run_in_process(argv):
    from degla.cli import run
    from degla.training import TRAINING

    return run(TRAINING, argv)


def load_wrapper_weights(run_dir):
    return load_file(os.path.join(run_dir, "model.safetensors"))


def assert_two_processes_update_like_one(model_dir, data_dir, tmp_path, port: int, *extra) -> dict:
    """Three plain-SGD steps (Adam would hide a uniform gradient scale) of 2 real CPU processes × batch 2 and of 1
    process × batch 4 from `model_dir`: every weight's *change* must agree, and most must move far above the
    tolerance (a 2x gradient error would show). Returns the one-process run's weights."""
    import torch

    from degla import DeGLAForContrastive

    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    common = ["--max_steps", "3", "--optim", "sgd", "--learning_rate", "0.5", *extra]
    subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                    "--main_process_port", str(port), os.path.join(ROOT, "scripts", "train.py"),
                    *train_args(model_dir, data_dir, tmp_path / "two", *common,
                                "--per_device_train_batch_size", "2")], check=True, env=env, cwd=tmp_path)
    run_in_process(train_args(model_dir, data_dir, tmp_path / "one", *common, "--per_device_train_batch_size", "4"))
    one, two = load_wrapper_weights(tmp_path / "one"), load_wrapper_weights(tmp_path / "two")
    start = DeGLAForContrastive.from_student(model_dir).state_dict()
    moved = 0
    for name in one:
        step_one, step_two = one[name] - start[name], two[name] - start[name]
        torch.testing.assert_close(step_two, step_one, atol=1e-6, rtol=1e-3, msg=name)
        moved += int(step_one.abs().max() > 1e-3)
    assert moved > len(one) // 2
    return {"start": start, "one": one}
