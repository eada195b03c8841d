"""`DeGLATrainer`: a `transformers.Trainer` that optimises the DeGLA objective and keeps the EMA teacher."""

from __future__ import annotations

import os
from collections import defaultdict

import torch
from accelerate.utils import DistributedType
from transformers import Trainer, TrainerCallback

from ..modeling_degla import DeGLAForContrastive
from .arguments import DeGLATrainingArguments
from .data import COLLATOR_COLUMNS, DeGLACollator
from .export import push_export

LOGGED_TERMS = ("loss_base", "loss_igc", "loss_tgc", "loss_distill")


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


def _unwrap(model) -> DeGLAForContrastive:
    while not isinstance(model, DeGLAForContrastive) and hasattr(model, "module"):
        model = model.module
    if not isinstance(model, DeGLAForContrastive):
        raise TypeError(f"DeGLATrainer trains a DeGLAForContrastive, got {type(model).__name__}")
    return model


class DeGLATrainer(Trainer):
    """Trainer for [`DeGLAForContrastive`].

    - `compute_loss` runs the model with cross-process gathering (with gradients) so W processes of batch b
      update exactly like one process of batch W·b, and logs every term (main process, through `log`).
    - `model_accepts_loss_kwargs = False`: the objective is a mean over anchors (plus a summed distillation that
      the model rescales), so Trainer divides each micro-batch loss by the accumulation steps. Under gradient
      accumulation the contrastive negatives of a micro-batch are those of that micro-batch only.
    - The EMA teacher and the logit-scale clamp run in [`EMATeacherCallback`] after every optimizer step.
    - With `--push_to_hub`, only the drop-in CLIP export (see `scripts/train.py`) is pushed, never the wrapper.
    """

    def __init__(self, model: DeGLAForContrastive, args: DeGLATrainingArguments, processing_class=None,
                 data_collator=None, callbacks=None, **kwargs):
        if data_collator is None and processing_class is not None:
            data_collator = DeGLACollator(processing_class, args.num_negatives, max_length=args.max_text_length)
        super().__init__(model=model, args=args, processing_class=processing_class, data_collator=data_collator,
                         callbacks=[EMATeacherCallback(), *(callbacks or [])], **kwargs)
        self.model_accepts_loss_kwargs = False
        self._check_parallelism()
        self._metrics: dict[str, list[float]] = defaultdict(list)

    def _check_parallelism(self) -> None:
        state = self.accelerator.state
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

    def init_hf_repo(self, token: str | None = None, private: bool | None = None) -> None:
        """Nothing to create up front: `push_to_hub` creates the repository of the CLIP export."""

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """Wrapper checkpoints (student + teacher + optimizer) stay local; they are for resuming."""

    def push_to_hub(self, commit_message: str | None = None, **kwargs) -> str | None:
        """Upload the drop-in CLIP export (`<output_dir>/clip`, written by `export`), never the wrapper."""
        path = os.path.join(self.args.output_dir, "clip")
        if not self.is_world_process_zero():
            return None
        if not os.path.isdir(path):
            raise FileNotFoundError(f"{path} does not exist: call trainer.export() before pushing")
        return push_export(path, self.args.hub_model_id, token=self.args.hub_token,
                           private=self.args.hub_private_repo)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs, return_loss=True, gather_distributed=True,
                        accumulation_steps=self.current_gradient_accumulation_steps)
        if model.training:
            terms = torch.stack([getattr(outputs, name).detach().float() for name in LOGGED_TERMS])
            terms = self.accelerator.reduce(terms, reduction="mean")
            for name, value in zip(LOGGED_TERMS, terms.tolist()):
                self._metrics[name].append(value)
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the mean of each loss term since the last log, and the current temperature scale."""
        if self._metrics and "loss" in logs:
            logs.update({name: sum(v) / len(v) for name, v in self._metrics.items()})
            logs["logit_scale"] = _unwrap(self.model).logit_scale.exp().item()
            self._metrics.clear()
        super().log(logs, start_time)

    def export(self, output_dir: str | None = None) -> str:
        """Write the student as a drop-in CLIP checkpoint (+ processor) to `<output_dir>/clip`; returns the path."""
        path = os.path.join(output_dir or self.args.output_dir, "clip")
        if self.is_world_process_zero():
            _unwrap(self.model).export_clip(path, processor=self.processing_class)
        self.accelerator.wait_for_everyone()
        return path
