"""How each dual-encoder family's inputs are prepared, as its authors' evaluation code prepares them.

One `Family` per `config.model_type`; `family_of(model)` picks it and `DEFAULT_FAMILY` covers any other model with
`get_image_features` / `get_text_features` (the checkpoint's own processor, padded to the longest text). What each
family gets, and the code it follows, is the table in docs/evaluation.md (Model families):

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

Similarity is the cosine of L2-normalised features for every family. SigLIP's logit is `exp(t) * cos + b` and
ALIGN's `cos / temperature`, both increasing functions of the cosine, so every ranking, comparison and tie (all
the benchmarks use) is the same as with the model's own logits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


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
    which is passed to `get_image_features`)."""

    name: str
    image: str
    text: TextRecipe
    sources: tuple[str, ...] = ()

    def describe(self) -> dict:
        """JSON-ready summary (run_info.json, the report's families table, the feature-cache key)."""
        return {"family": self.name, "image": self.image, "text": asdict(self.text)}


FAMILIES: dict[str, Family] = {
    "clip": Family("CLIP", "openclip", TextRecipe(clean=True, padding="longest"),
                   ("openai/CLIP clip/clip.py (_transform, tokenize)", "mlfoundations/open_clip tokenizer.py")),
    "siglip": Family("SigLIP", "checkpoint",
                     TextRecipe(lowercase=True, padding="max_length", attention_mask=False),
                     ("google-research/big_vision pp/ops_text.py get_pp_tokenize (lower=True)",
                      "big_vision models/proj/image_text/text_transformer.py (no mask, last-token pooling)",
                      "big_vision configs/proj/image_text/SigLIP_demo.ipynb")),
    "siglip2": Family("SigLIP 2", "checkpoint",
                      TextRecipe(lowercase=True, padding="max_length", attention_mask=False),
                      ("big_vision configs/proj/image_text/SigLIP2_demo.ipynb (lower|tok length=64, eos=sticky)",
                       "big_vision pp/proj/image_text/ops_naflex.py")),
    "align": Family("ALIGN", "checkpoint", TextRecipe(padding="max_length", max_length=64),
                    ("kakaobrain/coyo-align datasets/text_preprocessor.py (bert_en_uncased, seq_length 64)",
                     "kakaobrain/coyo-align datasets/image_preprocessor.py (resize 346, crop 289)")),
}
DEFAULT_FAMILY = Family("other", "checkpoint", TextRecipe(padding="longest"))


def family_of(model) -> Family:
    """The `Family` of a loaded model, by `config.model_type` (`DEFAULT_FAMILY` for any other dual encoder)."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    family = FAMILIES.get(model_type)
    if family is None:
        return Family(f"other ({model_type or type(model).__name__})", DEFAULT_FAMILY.image, DEFAULT_FAMILY.text)
    return family
