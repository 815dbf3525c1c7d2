"""Tokenizers for the Long Range Arena tasks, built with `tokenizers` and wrapped in `PreTrainedTokenizerFast`.

Two vocabularies cover the text-like LRA tasks (Image and Pathfinder need none: a pixel value is its token id):

ListOps (`listops_tokenizer`, 18 ids): one token per whitespace-separated symbol.
    0 "[PAD]", 1 "[UNK]", 2 "[MAX", 3 "[MIN", 4 "[MED", 5 "[SM", 6 "]", 7..16 "0".."9", 17 "[CLS]"
    LRA's raw tsv files write every argument inside "( ... )"; those parentheses carry no information
    (the operator tokens and "]" already fix the tree), and LRA's published pipeline drops them, so the
    normalizer turns them into spaces: a raw LRA line and our generated line give the same ids.

Text / Retrieval (`byte_tokenizer`, 258 ids): one token per UTF-8 byte.
    0 "[PAD]", byte b -> id b + 1 (1..256), 257 "[CLS]"
    This is the layout of LRA's `tfds ByteTextEncoder` (pad 0, byte b -> b + 1) plus a CLS id. No "[UNK]"
    is needed: every byte has an id.

"[CLS]" is the LAST id in both because the MIMOFormer authors' CLS pooling prepends token id vocab_size - 1.
Neither tokenizer adds special tokens on its own (no BOS/EOS/CLS); the model prepends CLS when it pools so.
"""

import json
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
CLS_TOKEN = "[CLS]"

LISTOPS_OPERATORS = ["[MAX", "[MIN", "[MED", "[SM"]
LISTOPS_END = "]"
LISTOPS_DIGITS = [str(d) for d in range(10)]
# id = position in this list; [CLS] last (see the module docstring).
LISTOPS_VOCAB = [PAD_TOKEN, UNK_TOKEN, *LISTOPS_OPERATORS, LISTOPS_END, *LISTOPS_DIGITS, CLS_TOKEN]

BYTE_OFFSET = 1  # byte b -> id b + BYTE_OFFSET; id 0 is padding
BYTE_VOCAB_SIZE = 256 + 2  # [PAD], 256 bytes, [CLS]


def _wrap(backend, max_length, special_tokens):
    """A `PreTrainedTokenizerFast` around a `tokenizers.Tokenizer` with the settings shared by both tokenizers."""
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=max_length,
        model_input_names=["input_ids", "attention_mask"],
        padding_side="right",
        truncation_side="right",
        # Special tokens are only ever inserted by the model (CLS) or by padding; a literal "[CLS]" or "[PAD]"
        # inside the data must stay ordinary text (bytes), never become the special id.
        split_special_tokens=True,
        **special_tokens,
    )


def listops_tokenizer(max_length=2000):
    """The ListOps tokenizer: WordLevel over the 18 symbols, parentheses ignored, whitespace split.

    max_length: the tokenizer's `model_max_length` (LRA ListOps: sequences shorter than 2000 tokens).
    """
    vocab = {token: i for i, token in enumerate(LISTOPS_VOCAB)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK_TOKEN))
    # "(" and ")" become spaces, so "( ( [MAX 2 ) 9 ) ] )" and "[MAX 2 9 ]" split into the same tokens.
    backend.normalizer = normalizers.Replace(Regex(r"[()]"), " ")
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins tokens with single spaces
    return _wrap(backend, max_length, {"pad_token": PAD_TOKEN, "unk_token": UNK_TOKEN, "cls_token": CLS_TOKEN})


def bytes_to_unicode():
    """The GPT-2 byte -> printable character table that the `ByteLevel` pre-tokenizer applies (256 entries).

    transformers ships it (in 4.x and 5.x); it is re-exported here for the tokenizer and its tests.
    """
    from transformers.convert_slow_tokenizer import bytes_to_unicode as table

    return table()


def byte_tokenizer(max_length=4000):
    """The byte-level tokenizer of LRA Text and Retrieval: one id (byte + 1) per UTF-8 byte, no UNK.

    max_length: the tokenizer's `model_max_length` (LRA Text and Retrieval: 4000 bytes per document).
    """
    table = bytes_to_unicode()
    vocab = {PAD_TOKEN: 0, **{table[b]: b + BYTE_OFFSET for b in range(256)}, CLS_TOKEN: BYTE_VOCAB_SIZE - 1}
    # WordLevel needs an unk token name; with all 256 byte characters in the vocab it can never be used.
    backend = Tokenizer(models.WordLevel(vocab, unk_token=PAD_TOKEN))
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        # UTF-8 bytes -> one printable character each; no regex split, no added space, so nothing is lost.
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        # Then one piece per character, i.e. per byte ("[\\s\\S]" matches any character, newlines included).
        pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated"),
    ])
    backend.decoder = decoders.ByteLevel()
    return _wrap(backend, max_length, {"pad_token": PAD_TOKEN, "cls_token": CLS_TOKEN})


def save_tokenizer(tokenizer, folder):
    """`save_pretrained` into `folder`, loadable by transformers v4 and v5 alike.

    transformers v5 records "TokenizersBackend" as the tokenizer class, a name v4 does not know; both versions
    load "PreTrainedTokenizerFast" (in v5 an alias of the same class), so the config is rewritten to it.
    """
    folder = Path(folder)
    tokenizer.save_pretrained(folder)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return folder


def tokenizer_for_kind(kind, max_length):
    """The tokenizer of an LRA task's `LRA_TASKS[task]["tokenizer"]` kind; None for pixel inputs (no tokenizer)."""
    makers = {"listops": listops_tokenizer, "byte": byte_tokenizer, "pixel": None}
    if kind not in makers:
        raise ValueError(f"unknown tokenizer kind {kind!r}; known: {sorted(makers)}")
    return None if makers[kind] is None else makers[kind](max_length=max_length)
