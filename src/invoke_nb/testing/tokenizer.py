"""A small CLIP BPE tokenizer written from scratch, so tiny models need no download.

CLIP's tokenizer is byte-level BPE: every byte maps to a printable unicode character, the
last symbol of a word carries ``</w>``, and merges join symbol pairs by rank. We write the
256 byte symbols (plain and ``</w>``), merges that build a short list of common prompt
words, and the two special tokens. transformers' ``CLIPTokenizer`` loads the result like
any real tokenizer folder.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["WORDS", "vocab_size", "write_clip_tokenizer"]

# Words whose merges we write (most become one token); other text falls back to characters.
WORDS = [
    "a",
    "an",
    "the",
    "of",
    "and",
    "with",
    "in",
    "on",
    "at",
    "by",
    "for",
    "to",
    "from",
    "photo",
    "photograph",
    "portrait",
    "painting",
    "cat",
    "dog",
    "tiger",
    "cub",
    "cute",
    "super",
    "fierce",
    "national",
    "geographic",
    "award",
    "winning",
    "traditional",
    "chinese",
    "watercolor",
    "landscape",
    "mountain",
    "river",
    "forest",
    "city",
    "night",
    "day",
    "sun",
    "moon",
    "sky",
    "red",
    "green",
    "blue",
    "yellow",
    "black",
    "white",
    "big",
    "small",
    "old",
    "young",
    "man",
    "woman",
    "girl",
    "boy",
    "house",
    "tree",
    "flower",
    "car",
    "road",
    "beach",
    "sea",
    "ocean",
    "snow",
    "rain",
    "cloud",
    "light",
    "dark",
    "art",
    "style",
    "detailed",
    "high",
    "quality",
    "blurry",
    "ugly",
    "low",
    "bad",
]


def _byte_symbols() -> list[str]:
    """CLIP's byte -> printable character table (the GPT-2 scheme)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    table = dict(zip(printable, chars, strict=True))
    return [chr(table[b]) for b in range(256)]


def write_clip_tokenizer(dest: Path, *, model_max_length: int = 77) -> Path:
    """Write vocab.json, merges.txt and the tokenizer configs into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    symbols = _byte_symbols()
    vocab: dict[str, int] = {}
    for s in symbols:
        vocab.setdefault(s, len(vocab))
    for s in symbols:
        vocab.setdefault(s + "</w>", len(vocab))
    merges: list[str] = []
    seen: set[tuple[str, str]] = set()
    for word in WORDS:
        # Left-to-right merges: ((c a) t</w>) -> "ca" then "cat</w>".
        parts = [*word[:-1], word[-1] + "</w>"]
        left = parts[0]
        for right in parts[1:]:
            pair = (left, right)
            merged = left + right
            if pair not in seen:
                seen.add(pair)
                merges.append(f"{left} {right}")
            vocab.setdefault(merged, len(vocab))
            left = merged
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab.setdefault(special, len(vocab))
    (dest / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (dest / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": model_max_length,
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "do_lower_case": True,
    }
    (dest / "tokenizer_config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    special = {k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
    (dest / "special_tokens_map.json").write_text(json.dumps(special, indent=1), encoding="utf-8")
    return dest


def vocab_size(folder: Path) -> int:
    """How many ids the tokenizer in ``folder`` has (the text encoders' vocab size)."""
    return len(json.loads((folder / "vocab.json").read_text(encoding="utf-8")))
