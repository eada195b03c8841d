"""Training: arguments, data pipeline, trainer and export of DeGLA runs."""

from .arguments import DataArguments, DeGLATrainingArguments, ModelArguments, ObjectiveArguments
from .data import DeGLACollator, assign_negative_slots, check_images
from .formats import load_negatives_dataset, read_degla_json, read_negclip_tsv
from .run import TRAINING, run_training
from .trainer import DeGLATrainer, EMATeacherCallback
from .transforms import TrainImageTransform

__all__ = ["ModelArguments", "DataArguments", "ObjectiveArguments", "DeGLATrainingArguments", "DeGLATrainer",
           "EMATeacherCallback", "DeGLACollator", "TrainImageTransform", "assign_negative_slots", "check_images",
           "load_negatives_dataset", "read_degla_json", "read_negclip_tsv", "TRAINING", "run_training"]
