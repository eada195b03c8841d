"""DeGLA: Decoupled Global-Local Alignment fine-tuning for Hugging Face CLIP models."""

__version__ = "0.1.0"
