"""DeGLA: Decoupled Global-Local Alignment fine-tuning for Hugging Face CLIP models."""

from .configuration_degla import DeGLAConfig
from .modeling_degla import DeGLAForContrastive, DeGLAOutput

__version__ = "0.1.0"
__all__ = ["DeGLAConfig", "DeGLAForContrastive", "DeGLAOutput"]
