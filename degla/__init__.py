"""DeGLA: Decoupled Global-Local Alignment fine-tuning for Hugging Face CLIP models."""

from ._lazy import lazy_exports

__version__ = "0.1.0"
__all__ = ["DeGLAConfig", "DeGLAForContrastive", "DeGLAOutput"]
# through modeling_degla, which registers DeGLAConfig/DeGLAForContrastive with AutoConfig/AutoModel
__getattr__ = lazy_exports(__name__, {name: ".modeling_degla" for name in __all__})
