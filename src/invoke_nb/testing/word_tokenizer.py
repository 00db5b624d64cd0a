"""A small word-level fast tokenizer written locally, for tiny GLM and Qwen3 text encoders.

Real GLM-4 and Qwen3 tokenizers are large byte-level BPE files fetched from the hub; the
pipelines only need a ``PreTrainedTokenizerFast`` with a pad token (and, for Qwen3, a chat
template). A word-level vocabulary of common prompt words plus the special tokens, with
unknown words mapped to one id, is enough and builds in milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path

from invoke_nb.testing.tokenizer import WORDS

__all__ = ["write_word_tokenizer"]

_PUNCT = [".", ",", "!", "?", ":", ";", "'", '"', "-", "(", ")", "\n"]


def write_word_tokenizer(
    dest: Path,
    *,
    specials: list[str],
    pad_token: str,
    eos_token: str | None = None,
    chat_template: str | None = None,
    padding_side: str = "right",
    prefix: tuple[str, ...] = (),
) -> Path:
    """Write tokenizer.json and tokenizer_config.json into ``dest``; return ``dest``.

    ``prefix`` tokens (specials) start every encoding, as GLM's ``[gMASK] <sop>`` do.
    """
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {"<unk>": 0}
    for word in [*specials, *WORDS, *_PUNCT]:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    if prefix:
        tok.post_processor = processors.TemplateProcessing(
            single=" ".join([*prefix, "$A"]),
            special_tokens=[(t, vocab[t]) for t in prefix],
        )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token=pad_token,
        eos_token=eos_token,
        additional_special_tokens=[s for s in specials if s not in (pad_token, eos_token)],
        padding_side=padding_side,
        model_max_length=1024,
    )
    if chat_template is not None:
        fast.chat_template = chat_template
    dest.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(dest)
    cfg_path = dest / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg, indent=1), encoding="utf-8")
    return dest
