"""What a new user trips over (issue 33): a Hub that cannot be reached or has no such repository is one error line
at once (no retries), evaluation results are never replaced silently, options are checked before anything loads,
the cards hold the metadata the Hub reads, advice is true, and --help is readable and imports no model code."""

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest
from huggingface_hub import DatasetCard, ModelCard, constants

from degla import demo
from degla.cli import apply_embedded_default, main, run
from degla.errors import InputError, ModelLoadError, OutputExistsError
from degla.eval.run import EVALUATION
from degla.generation import DEFAULT_CAPTIONS
from degla.generation.run import GENERATION
from degla.hub import model_loading
from degla.training import TRAINING, DeGLATrainingArguments
from degla.training.export import model_card_files
from degla.training.trainer import check_output_dir
from degla.world.pretrain import PRETRAINING

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HUB_ID = "no-such-org/no-such-clip"


def closed_port() -> int:
    """A local port nothing listens on (connections to it are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def hub_at(monkeypatch):
    """Point huggingface_hub at `url` (online mode, whatever the environment says)."""
    def point(url):
        monkeypatch.setattr(constants, "ENDPOINT", url)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return point


class CountingHub(http.server.BaseHTTPRequestHandler):
    """A Hub that answers every request with `status` (and the Hub's error code), counting requests."""
    status, error_code, requests = 404, "RepoNotFound", []

    def do_GET(self):
        type(self).requests.append(self.path)
        self.send_response(self.status)
        self.send_header("X-Error-Code", self.error_code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"error": "Repository not found"}).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_hub(hub_at):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CountingHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    CountingHub.requests = []
    hub_at(f"http://127.0.0.1:{server.server_address[1]}")
    yield CountingHub
    server.shutdown()


# -- 1. the Hub: one request, one error, at once --------------------------------------------------------------------
def test_an_unreachable_hub_is_one_error_naming_the_option_at_once(hub_at, tiny_dataset_dir, sugarcrepe_dir,
                                                                   tmp_path):
    port = closed_port()
    hub_at(f"http://127.0.0.1:{port}")
    cases = [
        (TRAINING, ["--model_name_or_path", HUB_ID, "--train_file", tiny_dataset_dir], "--model_name_or_path"),
        (TRAINING, ["--train_file", "no-such-org/negatives"], "--train_file"),
        (TRAINING, ["--train_file", "hf://datasets/no-such-org/negatives/DeGLA.json"], "--train_file"),
        (EVALUATION, ["--model_name_or_path", HUB_ID, "--sugarcrepe_dir", sugarcrepe_dir, "--coco_val2017_dir",
                      str(tmp_path)], "--model_name_or_path"),
        (EVALUATION, ["--model_name_or_path", HUB_ID, "--zeroshot_datasets", "cifar10"], "--zeroshot_sources cifar10"),
        (GENERATION, ["--captions", str(DEFAULT_CAPTIONS), "--model", "no-such-org/no-such-lm"], "--model"),
    ]
    for i, (stage, argv, option) in enumerate(cases):
        start = time.monotonic()
        with pytest.raises(InputError, match=rf"^{option} '[^']+': the Hub \(http://127\.0\.0\.1:{port}\) cannot "
                                             r"be reached \(ConnectError: .*\); the Hub cache holds no copy of it$"):
            run(stage, [*argv, "--output_dir", str(tmp_path / f"out{i}")])
        assert time.monotonic() - start < 20, (option, time.monotonic() - start)
        assert not os.path.exists(tmp_path / f"out{i}")


def test_a_missing_repository_or_a_failing_hub_costs_one_request(fake_hub, tiny_dataset_dir, tmp_path):
    argv = ["--model_name_or_path", HUB_ID, "--train_file", tiny_dataset_dir, "--output_dir", str(tmp_path / "r")]
    with pytest.raises(ModelLoadError, match=rf"^--model_name_or_path '{HUB_ID}': no such model repository on the "
                                             r"Hub, and no such local path \(check the name; a private or gated"):
        run(TRAINING, argv)
    assert fake_hub.requests == [f"/api/models/{HUB_ID}"]
    fake_hub.requests, fake_hub.status, fake_hub.error_code = [], 503, ""
    with pytest.raises(ModelLoadError, match=r"cannot be reached \(HTTP 503 Service Unavailable\); the Hub "
                                             r"cache holds no copy of it$"):
        run(TRAINING, argv)
    assert len(fake_hub.requests) == 1  # huggingface_hub's own loads retry a 503 five times, with back-off


def test_an_unreachable_hub_loads_a_cached_model_offline(hub_at, tiny_model_dir, tmp_path, monkeypatch):
    from transformers import CLIPModel

    hub_at(f"http://127.0.0.1:{closed_port()}")
    repo = tmp_path / "hub" / "models--no-such-org--no-such-clip"  # the Hub cache's layout, as a download leaves it
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for name in os.listdir(tiny_model_dir):
        os.symlink(os.path.join(tiny_model_dir, name), snapshot / name)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with model_loading("--model_name_or_path", HUB_ID):
        assert constants.HF_HUB_OFFLINE
        model = CLIPModel.from_pretrained(HUB_ID, cache_dir=str(tmp_path / "hub"))
    assert not constants.HF_HUB_OFFLINE and model.config.projection_dim > 0


@pytest.mark.slow
def test_train_py_on_an_unreachable_hub_prints_one_line(tiny_dataset_dir, tmp_path):
    env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}", "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("TRANSFORMERS_OFFLINE", None)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--model_name_or_path",
                           HUB_ID, "--train_file", tiny_dataset_dir, "--output_dir", str(tmp_path / "run")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert lines == [f"error: --model_name_or_path '{HUB_ID}': the Hub ({env['HF_ENDPOINT']}) cannot be reached "
                     "(ConnectError: [Errno 111] Connection refused); the Hub cache holds no copy of it"], lines


# -- 2. evaluation results are never replaced silently ------------------------------------------------------------
def test_evaluation_refuses_a_folder_holding_results_before_loading(tmp_path, sugarcrepe_dir, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    out = tmp_path / "my_eval"
    out.mkdir()
    (out / "results.json").write_text('{"zeroshot": {"avg": 50.0}}')
    argv = ["--model_name_or_path", HUB_ID, "--sugarcrepe_dir", sugarcrepe_dir, "--coco_val2017_dir", str(tmp_path),
            "--output_dir", str(out)]
    with pytest.raises(OutputExistsError, match=r"my_eval already holds results \(results\.json\); evaluate into a "
                                                r"new --output_dir, or pass --overwrite_output_dir to replace them"):
        run(EVALUATION, argv)
    assert json.loads((out / "results.json").read_text()) == {"zeroshot": {"avg": 50.0}}
    with pytest.raises(ModelLoadError):  # past the guard: the (missing) model is what stops it now
        run(EVALUATION, [*argv, "--overwrite_output_dir"])


def test_the_evaluation_demo_replaces_its_own_folder_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    os.makedirs(demo.EVAL_OUTPUT_DIR)
    open(os.path.join(demo.EVAL_OUTPUT_DIR, "results.json"), "w").write("{}")
    default = replace(demo.EVALUATION, options=lambda: {"model_name_or_path": "m", "output_dir": demo.EVAL_OUTPUT_DIR})
    argv = apply_embedded_default(EVALUATION.with_default(default), [])
    assert argv[argv.index("--overwrite_output_dir") + 1] == "true"
    assert f"{demo.EVAL_OUTPUT_DIR} is the embedded default's own folder and holds an earlier run: replacing it" in \
        capsys.readouterr().out


# -- 3. options checked before anything loads --------------------------------------------------------------------
@pytest.mark.parametrize("stage, argv, message", [
    (TRAINING, ["--max_steps", "-3"], "--max_steps -3: must be >= 1, or -1 (train for --num_train_epochs epochs)"),
    (TRAINING, ["--max_steps", "0"], "--max_steps 0: must be >= 1, or -1 (train for --num_train_epochs epochs)"),
    (TRAINING, ["--learning_rate", "0"], "--learning_rate 0.0: must be > 0"),
    (TRAINING, ["--per_device_train_batch_size", "0"], "--per_device_train_batch_size 0: must be >= 1"),
    (TRAINING, ["--num_train_epochs", "-1"], "--num_train_epochs -1.0: must be > 0"),
    (TRAINING, ["--dataloader_num_workers", "-2"], "--dataloader_num_workers -2: must be >= 0"),
    (TRAINING, ["--gradient_accumulation_steps", "0"], "--gradient_accumulation_steps 0: must be >= 1"),
    (TRAINING, ["--lora_r", "0"], "--lora_r 0: must be >= 1"),
    (TRAINING, ["--max_train_samples", "0"], "--max_train_samples 0: must be >= 1"),
    (TRAINING, ["--num_negatives", "-1"], "--num_negatives -1: must be an integer >= 0 (0 trains without negatives)"),
    (TRAINING, ["--ema_decay", "1.5"], "--ema_decay 1.5: must lie in [0, 1]"),
    (TRAINING, ["--crop_scale", "0.5"], "--crop_scale takes two numbers 0 < min <= max <= 1, got [0.5]"),
    (GENERATION, ["--batch_size", "0"], "--batch_size 0: must be >= 1"),
    (GENERATION, ["--max_captions", "0"], "--max_captions 0: must be >= 1"),
    (GENERATION, ["--candidates_per_prompt", "0"], "--candidates_per_prompt 0: must be >= 1"),
    (GENERATION, ["--max_retries", "-1"], "--max_retries -1: must be >= 0"),
    (EVALUATION, ["--batch_size", "0"], "--batch_size 0: must be >= 1"),
    (EVALUATION, ["--num_workers", "-1"], "--num_workers -1: must be >= 0"),
    (PRETRAINING, ["--max_steps", "0"], "--max_steps 0: must be >= 1"),
])
def test_a_nonsense_option_is_one_error_line_naming_it_and_its_range(stage, argv, message, tiny_dataset_dir, tmp_path,
                                                                     capsys):
    data = {TRAINING: ["--train_file", tiny_dataset_dir], GENERATION: ["--captions", str(DEFAULT_CAPTIONS),
            "--backend", "rule_based"], EVALUATION: ["--sugarcrepe_dir", str(tmp_path)], PRETRAINING: []}[stage]
    with pytest.raises(SystemExit) as stopped:
        main(stage, [*data, *argv, "--output_dir", str(tmp_path / "out")])
    assert stopped.value.code == 1
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not os.path.exists(tmp_path / "out")


def test_max_steps_minus_one_keeps_its_trainer_meaning(tiny_dataset_dir, tmp_path):
    from degla.cli import parse_stage_arguments

    *_, args = parse_stage_arguments(TRAINING, ["--train_file", tiny_dataset_dir, "--output_dir", str(tmp_path),
                                                "--max_steps", "-1", "--num_train_epochs", "2"])
    assert args.max_steps == -1 and args.num_train_epochs == 2


# -- 4. cards the Hub reads ---------------------------------------------------------------------------------------
def card_of(base, tmp_path, train_source="hf://datasets/some-org/negatives/DeGLA.json", license=None):
    args = DeGLATrainingArguments(output_dir=str(tmp_path / "run"), report_to="none")
    files = model_card_files(base, {"lambda_igc": 0.1}, args, {"negative_slots": "reshuffle"}, train_source,
                             "16 captions", 1, license=license)
    return files["README.md"], json.loads(files["degla_training_args.json"])


def test_the_model_card_holds_license_base_model_and_datasets(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    base = tmp_path / "my_base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"_name_or_path": "openai/clip-vit-base-patch32"}))
    (base / "README.md").write_text("---\nlicense: mit\n---\n# A small base CLIP\n")
    text, recipe = card_of(str(base), tmp_path)
    card = ModelCard(text)
    assert card.data.to_dict() == {"license": "mit", "library_name": "transformers",
                                   "pipeline_tag": "zero-shot-image-classification",
                                   "base_model": "openai/clip-vit-base-patch32", "datasets": ["some-org/negatives"],
                                   "tags": ["clip", "degla", "compositionality"]}
    assert "# DeGLA fine-tune of openai/clip-vit-base-patch32\n" in text
    assert "| `lr_scheduler_type` | cosine |" in text and "SchedulerType" not in text + json.dumps(recipe)
    assert str(tmp_path) not in text
    # a local base without a Hub origin: no base_model, its card's title; --license states the licence
    (base / "config.json").write_text(json.dumps({"_name_or_path": str(tmp_path / "elsewhere")}))
    text, _ = card_of(str(base), tmp_path, train_source=str(tmp_path), license="apache-2.0")
    data = ModelCard(text).data.to_dict()
    assert data["license"] == "apache-2.0" and "base_model" not in data and "datasets" not in data
    assert "# DeGLA fine-tune of A small base CLIP\n" in text and str(tmp_path) not in text
    # nothing known: the licence is 'unknown' and the card says how to state it
    text, _ = card_of("org/some-clip", tmp_path, train_source="org/negs")
    data = ModelCard(text).data.to_dict()
    assert data["license"] == "unknown" and data["base_model"] == "org/some-clip" and data["datasets"] == ["org/negs"]
    assert "pass `--license`" in text


def test_the_dataset_card_holds_license_task_language_size_and_source(tmp_path):
    out = tmp_path / "negatives"
    run(GENERATION, ["--captions", str(DEFAULT_CAPTIONS), "--backend", "rule_based", "--max_captions", "3",
                     "--license", "cc-by-4.0", "--output_dir", str(out)])
    data = DatasetCard.load(out / "README.md").data.to_dict()
    assert data["license"] == "cc-by-4.0" and data["task_categories"] == ["zero-shot-image-classification"]
    assert data["language"] == ["en"] and data["size_categories"] == ["n<1K"]
    assert data["source_datasets"] == [f"extended|{os.path.basename(DEFAULT_CAPTIONS)}"]
    assert data["configs"][0]["data_files"][0]["split"] == "train"


# -- 5. advice that is true ---------------------------------------------------------------------------------------
def test_the_refusal_suggests_resuming_only_a_checkpoint_that_exists(tmp_path):
    args = SimpleNamespace(output_dir=str(tmp_path), overwrite_output_dir=False)
    (tmp_path / "clip").mkdir()  # a run made with --save_strategy no: an export, no checkpoint
    with pytest.raises(OutputExistsError) as refused:
        check_output_dir(args, resuming=False)
    assert "--resume_from_checkpoint" not in str(refused.value) and "--overwrite_output_dir" in str(refused.value)
    for step in (9, 12):
        (tmp_path / f"checkpoint-{step}").mkdir()
    with pytest.raises(OutputExistsError, match=rf"resume it with --resume_from_checkpoint "
                                                rf"{tmp_path / 'checkpoint-12'}, train into a new"):
        check_output_dir(args, resuming=False)


# -- 6. a --help a person can read, that loads no model -----------------------------------------------------------
def test_training_help_is_grouped_with_each_default_once(capsys):
    text = TRAINING.with_default(demo.TRAINING).parser().format_help()
    headings = [line for line in text.splitlines() if line and not line.startswith(" ") and line.endswith(":")]
    assert headings == ["options:", "The run and its data:", "DeGLA's objective (the paper's values by default):",
                        "Negatives and images:", "The recipe (TrainingArguments with the paper's defaults):",
                        "Everything else Trainer passes through (transformers' TrainingArguments):"]
    flat = " ".join(text.split())
    assert "--no_dataloader_drop_last Sets --dataloader_drop_last to false." in flat
    assert "(default: None)" not in flat and "--model-name-or-path" not in flat
    assert "--crop_scale CROP_SCALE [CROP_SCALE ...] Area range of the random crop (the authors: 0.9 1.0). (default: " \
           "0.9 1.0)" in flat
    assert "a run without any data option starts from the embedded default" in flat
    for block in text.split("\n  --")[1:]:
        assert " ".join(block.split()).count("(default") <= 1, block
    generation = " ".join(GENERATION.parser().format_help().split())
    assert "--no_retry_sampling Sets --retry_sampling to false." in generation
    evaluation = " ".join(EVALUATION.parser().format_help().split())
    assert "(default: cuda if available)." in evaluation and "available). (default" not in evaluation


HEAVY = ("torch", "datasets", "transformers.trainer", "transformers.models.clip.modeling_clip", "degla.modeling_degla",
         "degla.training.trainer", "degla.generation.runner", "degla.world", "degla.eval.harness", "degla.eval.tasks")
PROBE = """import json, runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "imported": [m for m in json.loads(sys.stdin.read()) if m in sys.modules]}))
"""


def imported_by(script, *argv):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", PROBE, os.path.join(ROOT, "scripts", script), *argv],
                          input=json.dumps(HEAVY), capture_output=True, text=True, env=env, timeout=300)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_help_and_option_errors_import_no_model_dataset_or_evaluation_code(tmp_path):
    assert imported_by("generate_negatives.py", "--help") == {"code": 0, "imported": []}
    assert imported_by("generate_negatives.py", "--captions", "c.txt", "--batch_size", "0") == {"code": 1,
                                                                                                "imported": []}
    # TrainingArguments itself imports torch (and accelerate): nothing of the model, the Trainer or the world
    found = imported_by("train.py", "--help")
    assert found["code"] == 0 and set(found["imported"]) <= {"torch", "datasets"}, found
