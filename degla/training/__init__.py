"""Training: arguments, data pipeline, trainer and export of DeGLA runs (each name imported on first use)."""

from .._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("ModelArguments", "DataArguments", "ObjectiveArguments", "DeGLATrainingArguments", "TRAINING"),
                    ".arguments"),
    **dict.fromkeys(("DeGLACollator", "assign_negative_slots", "check_images"), ".data"),
    **dict.fromkeys(("load_negatives_dataset", "read_degla_json", "read_negclip_tsv"), ".formats"),
    "run_training": ".run",
    **dict.fromkeys(("DeGLATrainer", "EMATeacherCallback"), ".trainer"),
    "TrainImageTransform": ".transforms",
}
__all__ = ["ModelArguments", "DataArguments", "ObjectiveArguments", "DeGLATrainingArguments", "DeGLATrainer",
           "EMATeacherCallback", "DeGLACollator", "TrainImageTransform", "assign_negative_slots", "check_images",
           "load_negatives_dataset", "read_degla_json", "read_negclip_tsv", "TRAINING", "run_training"]
__getattr__ = lazy_exports(__name__, _EXPORTS)
