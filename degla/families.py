"""The dual-encoder families: how each one's inputs are prepared (as its authors' code prepares them) and, for the
families DeGLA trains, its base loss and logit-scale clamp. The one table below both the training
(`degla.training`, `DeGLAForContrastive`) and the evaluation harness (`degla.eval`); neither imports the other.

One `Family` per `config.model_type`; `family_of(model)` picks it and `DEFAULT_FAMILY` covers any other model with
`get_image_features` / `get_text_features` (the checkpoint's own processor, padded to the longest text). What each
family gets, and the code it follows, is the table in docs/evaluation.md (Model families); the training side
(base loss, clamp, augmentation) is in docs/recipe.md:

- **clip**: images through `OpenCLIPImageProcessor` (torchvision's centre crop, the pixels of OpenAI's CLIP and
  open_clip); texts through open_clip's cleaning (`degla.text.clean_text`), padded to the longest text of the batch
  (CLIP pools the end-of-text token, so padding does not change a feature), at most 77 tokens.
- **siglip**, **siglip2** (big_vision, `pp/ops_text.py::get_pp_tokenize` and the SigLIP / SigLIP 2 demo colabs):
  texts lower-cased (`lower=True`, the op's default; SigLIP 2's `lower(key="text")`), right-padded to the text
  tower's length (64; 16 for So400m/14-224) with the end-of-text token kept at the end when cut ("sticky"), and no
  attention mask: big_vision's text transformer has none and pools the last position, so pads are part of the
  input the model was trained on. Images: the checkpoint's processor (resize to the square input size, values
  in [-1, 1]; NaFlex's patches, `pixel_attention_mask` and `spatial_shapes` for SigLIP 2 NaFlex).
- **align** (kakaobrain/coyo-align, the code behind the Hugging Face ALIGN weights): BERT's uncased tokenizer
  (lower-cases itself) padded to 64 tokens with its attention mask (`bert_pack_inputs(seq_length=64)`), the text
  feature is the [CLS] token; images: the checkpoint's EfficientNet processor (resize 346, centre crop 289, values
  in [-1, 1]).

Training (`base_loss`, `logit_scale_max`): CLIP's base term is the softmax contrast of eq. 4-5 with the log scale
clamped to [0, ln 100] after every step (OpenAI's CLIP and open_clip's `main.py`); SigLIP's and SigLIP 2's is the
pairwise sigmoid loss over s·cos + b (big_vision `trainers/proj/image_text/siglip.py`, transformers' `SiglipModel`),
with no clamp (big_vision's `two_towers.py` learns `t` unclamped; transformers' SigLIP has none). ALIGN and other
families have no base term here, so DeGLA does not train them.

Similarity is the cosine of L2-normalised features for every family. SigLIP's logit is `exp(t) * cos + b` and
ALIGN's `cos / temperature`, both increasing functions of the cosine, so every ranking, comparison and tie (all
the benchmarks use) is the same as with the model's own logits.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .text import clean_text

SOFTMAX, SIGMOID = "softmax", "sigmoid"  # the base terms of `degla.losses` (CLIP's eq. 4-5; SigLIP's sigmoid loss)


@dataclass(frozen=True)
class TextRecipe:
    """How texts become `get_text_features` inputs.

    Args:
        clean (`bool`): open_clip's cleaning (`degla.text.clean_text`: ftfy, HTML unescaping, whitespace) first.
        lowercase (`bool`): lower-case the text before the tokenizer (on top of whatever the tokenizer does).
        padding (`str`): `"longest"` (the batch's longest text) or `"max_length"` (always `max_length` tokens).
        max_length (`int`, optional): token limit; `None` = the text tower's `max_position_embeddings`.
        padding_side (`str`): where pads go, whatever the saved tokenizer says.
        attention_mask (`bool`): pass the tokenizer's attention mask to the model.
    """

    clean: bool = False
    lowercase: bool = False
    padding: str = "longest"
    max_length: int | None = None
    padding_side: str = "right"
    attention_mask: bool = True


@dataclass(frozen=True)
class Family:
    """One model family: its display name, image handling, text recipe and where they come from.

    `image`: `"openclip"` (the checkpoint's CLIP image processor with torchvision's centre crop,
    `OpenCLIPImageProcessor`) or `"checkpoint"` (the checkpoint's own image processor as saved, every output of
    which is passed to `get_image_features`).
    `base_loss`: the base term DeGLA trains the family with (`"softmax"`, `"sigmoid"`), None if it does not train it.
    `logit_scale_max`: the clamp of the learnable log scale after every optimizer step, None where the family's
    code does not clamp."""

    name: str
    image: str
    text: TextRecipe
    sources: tuple[str, ...] = ()
    base_loss: str | None = None
    logit_scale_max: float | None = None

    def prepare_text(self, text: str) -> str:
        """The text as the family's tokenizer receives it (`clean_text` for CLIP, lower-cased for SigLIP)."""
        text = clean_text(text) if self.text.clean else text
        return text.lower() if self.text.lowercase else text

    def text_max_length(self, model_config, tokenizer=None) -> int:
        """The family's token limit, else the text tower's position count (77 for CLIP, 64 for SigLIP)."""
        if self.text.max_length is not None:
            return self.text.max_length
        text_config = getattr(model_config, "text_config", model_config)
        length = getattr(text_config, "max_position_embeddings", None)
        return int(length) if length else min(int(getattr(tokenizer, "model_max_length", 77)), 512)

    def tokenize(self, tokenizer, texts: list[str], max_length: int) -> dict:
        """Tokenizer outputs for texts already through `prepare_text`, per the family's `TextRecipe` (no attention
        mask where the family's model is run without one)."""
        batch = tokenizer(texts, padding=self.text.padding, truncation=True, max_length=max_length,
                          padding_side=self.text.padding_side, return_tensors="pt")
        if not self.text.attention_mask:
            batch.pop("attention_mask", None)
        return dict(batch)

    def describe(self) -> dict:
        """JSON-ready summary (run_info.json, the report's families table, the feature-cache key)."""
        return {"family": self.name, "image": self.image, "text": asdict(self.text)}


FAMILIES: dict[str, Family] = {
    "clip": Family("CLIP", "openclip", TextRecipe(clean=True, padding="longest"),
                   ("openai/CLIP clip/clip.py (_transform, tokenize)", "mlfoundations/open_clip tokenizer.py"),
                   base_loss=SOFTMAX, logit_scale_max=math.log(100.0)),
    "siglip": Family("SigLIP", "checkpoint",
                     TextRecipe(lowercase=True, padding="max_length", attention_mask=False),
                     ("google-research/big_vision pp/ops_text.py get_pp_tokenize (lower=True)",
                      "big_vision models/proj/image_text/text_transformer.py (no mask, last-token pooling)",
                      "big_vision configs/proj/image_text/SigLIP_demo.ipynb"), base_loss=SIGMOID),
    "siglip2": Family("SigLIP 2", "checkpoint",
                      TextRecipe(lowercase=True, padding="max_length", attention_mask=False),
                      ("big_vision configs/proj/image_text/SigLIP2_demo.ipynb (lower|tok length=64, eos=sticky)",
                       "big_vision pp/proj/image_text/ops_naflex.py"), base_loss=SIGMOID),
    "align": Family("ALIGN", "checkpoint", TextRecipe(padding="max_length", max_length=64),
                    ("kakaobrain/coyo-align datasets/text_preprocessor.py (bert_en_uncased, seq_length 64)",
                     "kakaobrain/coyo-align datasets/image_preprocessor.py (resize 346, crop 289)")),
}
DEFAULT_FAMILY = Family("other", "checkpoint", TextRecipe(padding="longest"))


def family_of(model) -> Family:
    """The `Family` of a loaded model, by `config.model_type` (`DEFAULT_FAMILY` for any other dual encoder)."""
    return family_of_type(getattr(getattr(model, "config", None), "model_type", None), type(model).__name__)


def trainable_families() -> list[str]:
    """The `model_type`s DeGLA trains (those with a base term)."""
    return [model_type for model_type, family in FAMILIES.items() if family.base_loss]


def family_of_type(model_type: str | None, class_name: str = "") -> Family:
    """The `Family` of a `config.model_type` (`DEFAULT_FAMILY`'s recipe under a name saying what it is otherwise)."""
    family = FAMILIES.get(model_type)
    if family is None:
        return Family(f"other ({model_type or class_name})", DEFAULT_FAMILY.image, DEFAULT_FAMILY.text)
    return family
