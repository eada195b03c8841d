"""Caption normalisation applied before CLIP's BPE tokenizer, as OpenAI's CLIP and open_clip apply it.

OpenAI's `clip/simple_tokenizer.py` and open_clip's `SimpleTokenizer` (the tokenizer the DeGLA, NegCLIP and
CE-CLIP authors trained and evaluated with) clean every text before byte-pair encoding it:
`ftfy.fix_text` (repairs mojibake, straightens curly quotes, unifies ligatures and character widths, NFC),
`html.unescape` twice (`&amp;amp;` -> `&`), then every whitespace run becomes one space and the ends are
stripped. `transformers`' `CLIPTokenizer` does none of the first two steps (its normaliser is NFC, whitespace
runs -> one space, lower case), so the same caption can become different token ids, e.g. `“a dog”`,
`caf&eacute;` or `CafÃ©`. `clean_text` is that cleaning; lower-casing is left to the tokenizer (CLIP's
lower-cases, after the cleaning, as open_clip does).

The evaluation encoder applies it to every text; training collators should import it from here too.
"""

from __future__ import annotations

import html

import ftfy


def clean_text(text: str) -> str:
    """open_clip's `whitespace_clean(basic_clean(text))`: ftfy, HTML unescaping (twice), whitespace runs -> one
    space, stripped. Lower-casing is the tokenizer's job."""
    text = html.unescape(html.unescape(ftfy.fix_text(text)))
    return " ".join(text.split())
