"""Training: arguments, data pipeline, trainer and export of DeGLA runs."""

from .arguments import DeGLATrainingArguments
from .data import DeGLACollator, assign_negative_slots, check_images, load_negatives_dataset, read_negclip_tsv
from .trainer import DeGLATrainer, EMATeacherCallback

__all__ = ["DeGLATrainingArguments", "DeGLATrainer", "EMATeacherCallback", "DeGLACollator",
           "assign_negative_slots", "check_images", "load_negatives_dataset", "read_negclip_tsv"]
