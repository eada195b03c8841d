"""`DeGLATrainer`: a `transformers.Trainer` that optimises the DeGLA objective and keeps the EMA teacher."""

from __future__ import annotations

import glob
import logging
import math
import os
import shutil
from collections import defaultdict

import torch
from accelerate.utils import DistributedType
from torch.optim.lr_scheduler import LambdaLR
from transformers import Trainer, TrainerCallback

from ..errors import OutputExistsError
from ..families import trainable_families
from ..hub import push_folder
from ..modeling_degla import DeGLAForContrastive
from .arguments import DataArguments, DeGLATrainingArguments
from .data import COLLATOR_COLUMNS, DeGLACollator
from .transforms import TrainImageTransform

logger = logging.getLogger(__name__)
WRAPPER_FILES = ("config.json", "model.safetensors", "training_args.bin")


def decays(name: str, parameter: torch.Tensor) -> bool:
    """The authors' weight-decay rule (open_clip's `main.py`): decay parameters with at least two dimensions whose
    name contains none of `bn`, `ln`, `bias`, `logit_scale`. On transformers' CLIP this decays the attention and
    MLP weights, the projections and the patch, token and position embeddings; never the logit scale, the class
    embedding, norms or biases."""
    return parameter.ndim >= 2 and not any(part in name for part in ("bn", "ln", "bias", "logit_scale"))


def open_clip_cosine_schedule(optimizer, warmup_steps: int, total_steps: int) -> LambdaLR:
    """open_clip's `cosine_lr` (the authors' schedule): step s warms up as (s+1)/warmup, then a cosine to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def finished_work_in(output_dir: str) -> list[str]:
    """What a run into `output_dir` would replace: checkpoints, a saved wrapper, a CLIP export."""
    found = sorted(os.path.basename(p) for p in glob.glob(os.path.join(output_dir, "checkpoint-*")))
    found += [name for name in (*WRAPPER_FILES, *trainable_families())
              if os.path.exists(os.path.join(output_dir, name))]
    return found


def check_output_dir(args: DeGLATrainingArguments, resuming: bool) -> None:
    """Refuse to train over a finished run unless resuming it or told to overwrite it."""
    found = finished_work_in(args.output_dir)
    if found and not resuming and not args.overwrite_output_dir:
        checkpoints = sorted((name for name in found if name.startswith("checkpoint-")),
                             key=lambda name: int(name.split("-")[-1]) if name.split("-")[-1].isdigit() else -1)
        resume = (f"resume it with --resume_from_checkpoint {os.path.join(args.output_dir, checkpoints[-1])}, "
                  if checkpoints else "")  # advice only where a checkpoint exists (--save_strategy no saves none)
        raise OutputExistsError(f"{args.output_dir} already holds a run ({', '.join(found[:6])}); {resume}train "
                                "into a new --output_dir, or pass --overwrite_output_dir to replace it")


class EMATeacherCallback(TrainerCallback):
    """After every optimizer step (not every micro-batch): EMA teacher update, then logit-scale clamp.

    Runs on every process, on identical (DDP-synchronised) student weights, so every copy of the teacher stays
    identical. Parameters must be whole on each process: ZeRO-3 and FSDP shard them and are refused up front.
    """

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        unwrapped = _unwrap(model)
        dtype = next(unwrapped.teacher.parameters()).dtype
        step = 1.0 - unwrapped.config.ema_decay
        if dtype != torch.float32 and 0 < step < torch.finfo(dtype).eps:
            raise ValueError(f"the EMA teacher is stored in {dtype}, where an EMA step of (1-ema_decay)={step:g} is "
                             f"below the precision ({torch.finfo(dtype).eps:g}) and the teacher would never move; "
                             "keep fp32 weights (DDP with --bf16 autocasts over fp32 weights; DeepSpeed's bf16 "
                             "casts the weights themselves)")

    def on_step_end(self, args, state, control, model=None, **kwargs):
        unwrapped = _unwrap(model)
        unwrapped.update_teacher()
        unwrapped.clamp_logit_scale()


class AugmentationEpochCallback(TrainerCallback):
    """Tells the training image transform the epoch (its crops are seeded by seed, epoch and sample)."""

    def __init__(self, transform: TrainImageTransform):
        self.transform = transform

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.transform.epoch = int(state.epoch or 0)


def _unwrap(model) -> DeGLAForContrastive:
    while not isinstance(model, DeGLAForContrastive) and hasattr(model, "module"):
        model = model.module
    if not isinstance(model, DeGLAForContrastive):
        raise TypeError(f"DeGLATrainer trains a DeGLAForContrastive, got {type(model).__name__}")
    return model


class DeGLATrainer(Trainer):
    """Trainer for [`DeGLAForContrastive`]; the objective's hyperparameters are read from `model.config`.

    - `compute_loss` runs the model with cross-process gathering (with gradients) so W processes of batch b
      update exactly like one process of batch W·b, and logs every term the objective returns.
    - `model_accepts_loss_kwargs = False`: the objective is a mean over anchors (plus a summed distillation that
      the model rescales), so Trainer divides each micro-batch loss by the accumulation steps. Under gradient
      accumulation the contrastive negatives of a micro-batch are those of that micro-batch only.
    - The optimizer decays weights by the authors' rule (`decays`); `lr_scheduler_type="cosine"` warms up as
      open_clip does unless `open_clip_warmup=False`.
    - The EMA teacher and the logit-scale clamp run in [`EMATeacherCallback`] after every optimizer step.
    - Without a `data_collator`, one is built from the processor and `data_args` (images, augmentation, K).
    - With `--push_to_hub`, only the drop-in export is pushed, never the wrapper.
    - Texts and images are prepared per the student's family (`degla.families`: CLIP's cleaning and longest
      padding; SigLIP's lower-casing, padding to the text tower's length and no attention mask).
    """

    def __init__(self, model: DeGLAForContrastive, args: DeGLATrainingArguments, processing_class=None,
                 data_collator=None, callbacks=None, data_args: DataArguments | None = None, **kwargs):
        callbacks = [EMATeacherCallback(), *(callbacks or [])]
        if data_collator is None and processing_class is not None:
            data_args = data_args or DataArguments()
            family = _unwrap(model).config.family
            transform = TrainImageTransform(processing_class.image_processor, data_args.train_augmentation,
                                            tuple(data_args.crop_scale), seed=args.seed, family=family)
            max_length = min(data_args.max_text_length, family.text_max_length(
                _unwrap(model).config.student_config, processing_class.tokenizer))
            data_collator = DeGLACollator(processing_class, model.config.num_negatives, data_args.image_root,
                                          max_length, image_transform=transform, family=family)
        transform = getattr(data_collator, "image_transform", None)
        if isinstance(transform, TrainImageTransform):
            if args.dataloader_persistent_workers and transform.augmentation != "none":
                raise ValueError("--dataloader_persistent_workers keeps workers across epochs, so they would crop "
                                 "with the first epoch's seeds; turn it off (or --train_augmentation none)")
            callbacks.append(AugmentationEpochCallback(transform))
        super().__init__(model=model, args=args, processing_class=processing_class, data_collator=data_collator,
                         callbacks=callbacks, **kwargs)
        self.model_accepts_loss_kwargs = False
        self._check_parallelism()
        self._metrics: dict[str, list[float]] = defaultdict(list)

    def _check_parallelism(self) -> None:
        state = self.accelerator.state
        if self.args.n_gpu > 1:
            raise ValueError(f"{self.args.n_gpu} GPUs are visible to one process, so Trainer would wrap the model "
                             "in nn.DataParallel: each replica would contrast only its own slice and the summed "
                             "distillation would be divided by the GPU count. Launch one process per GPU: "
                             f"accelerate launch --multi_gpu --num_processes {self.args.n_gpu} scripts/train.py ... "
                             "(or expose one GPU: CUDA_VISIBLE_DEVICES=0)")
        if self.accelerator.distributed_type == DistributedType.FSDP:
            raise ValueError("FSDP shards parameters, so the EMA teacher cannot be updated from whole weights; "
                             "use DDP or DeepSpeed ZeRO-2 (scripts/accelerate_configs/)")
        if self.accelerator.distributed_type == DistributedType.DEEPSPEED and \
                state.deepspeed_plugin.zero_stage == 3:
            raise ValueError("DeepSpeed ZeRO-3 shards parameters, so the EMA teacher cannot be updated from whole "
                             "weights; use ZeRO-2 (scripts/accelerate_configs/deepspeed_zero2.yaml) or DDP")

    def _set_signature_columns_if_needed(self) -> None:
        """Keep the columns the collator reads (with `remove_unused_columns`, the rest are dropped)."""
        if self._signature_columns is None:
            self._signature_columns = list(COLLATOR_COLUMNS)

    # -- the recipe: weight-decay rule and schedule ---------------------------------------------------------------
    def get_decay_parameter_names(self, model) -> list[str]:
        return [name for name, parameter in model.named_parameters() if decays(name, parameter)]

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_scheduler is None and self.args.lr_scheduler_type == "cosine" and self.args.open_clip_warmup:
            self.lr_scheduler = open_clip_cosine_schedule(optimizer or self.optimizer,
                                                          self.args.get_warmup_steps(num_training_steps),
                                                          num_training_steps)
            self._created_lr_scheduler = True
        return super().create_scheduler(num_training_steps, optimizer)

    def train(self, resume_from_checkpoint=None, **kwargs):
        check_output_dir(self.args, resuming=bool(resume_from_checkpoint))
        if self.args.overwrite_output_dir and not resume_from_checkpoint:
            self._remove_previous_run()
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def _remove_previous_run(self) -> None:
        """With `--overwrite_output_dir` (and only then), the previous run's checkpoints, wrapper and export go
        before training starts, so that nothing of it is mistaken for this run's."""
        found = finished_work_in(self.args.output_dir)
        if found and self.is_world_process_zero():
            logger.warning("--overwrite_output_dir: removing the previous run's %s", ", ".join(found))
            for name in found:
                path = os.path.join(self.args.output_dir, name)
                if os.path.isdir(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)
        self.accelerator.wait_for_everyone()

    # -- the objective and its logs ---------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs, return_loss=True, gather_distributed=True,
                        accumulation_steps=self.current_gradient_accumulation_steps)
        if model.training:
            names = list(outputs.loss_terms)
            terms = torch.stack([outputs.loss_terms[name].detach().float() for name in names])
            terms = self.accelerator.reduce(terms, reduction="mean")
            for name, value in zip(names, terms.tolist()):
                self._metrics[name].append(value)
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the mean of each loss term since the last log, and the current temperature scale (and bias)."""
        if self._metrics and "loss" in logs:
            logs.update({name: sum(v) / len(v) for name, v in self._metrics.items()})
            logs["logit_scale"] = _unwrap(self.model).logit_scale.exp().item()
            if _unwrap(self.model).logit_bias is not None:  # SigLIP, SigLIP 2
                logs["logit_bias"] = _unwrap(self.model).logit_bias.item()
            self._metrics.clear()
        super().log(logs, start_time)

    # -- outputs ----------------------------------------------------------------------------------------------
    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        """Save the wrapper (checkpoints and the final one) file by file through a temporary folder, the weights
        last, so that a killed save never leaves weights under another run's config."""
        output_dir = output_dir or self.args.output_dir
        if not self.args.should_save:  # other ranks only join collectives, if any
            return super()._save(output_dir, state_dict=state_dict)
        tmp = os.path.join(output_dir, ".saving.tmp")
        shutil.rmtree(tmp, ignore_errors=True)  # what a killed save left behind is not part of this one
        super()._save(tmp, state_dict=state_dict)
        names = sorted(os.listdir(tmp), key=lambda name: name.endswith(".safetensors"))
        for name in names:
            os.replace(os.path.join(tmp, name), os.path.join(output_dir, name))
        os.rmdir(tmp)

    def export(self, output_dir: str | None = None, extra_files: dict[str, str] | None = None) -> str:
        """Write the student as a drop-in checkpoint of its own class (+ processor, + `extra_files` such as the model
        card) to `<output_dir>/<family>` (`clip`, `siglip`, `siglip2`), atomically; returns the path."""
        path = os.path.join(output_dir or self.args.output_dir, self.export_dir_name())
        if self.is_world_process_zero():
            _unwrap(self.model).export_student(path, processor=self.processing_class, extra_files=extra_files)
        self.accelerator.wait_for_everyone()
        return path

    def export_dir_name(self) -> str:
        """The export's folder inside the output folder: the student's `model_type` (`clip` for CLIP)."""
        return _unwrap(self.model).config.student_config.model_type

    def init_hf_repo(self, token: str | None = None, private: bool | None = None) -> None:
        """Nothing to create up front: `push_to_hub` creates the repository of the CLIP export."""

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """Wrapper checkpoints (student + teacher + optimizer) stay local; they are for resuming."""

    def push_to_hub(self, commit_message: str | None = None, **kwargs) -> str | None:
        """Upload the drop-in export (`<output_dir>/<family>`, written by `export`), never the wrapper."""
        if not self.is_world_process_zero():
            return None
        family = _unwrap(self.model).config.family.name
        return push_folder(os.path.join(self.args.output_dir, self.export_dir_name()), self.args.hub_model_id,
                           token=self.args.hub_token, private=self.args.hub_private_repo,
                           commit_message=commit_message or f"Upload DeGLA fine-tuned {family}")
