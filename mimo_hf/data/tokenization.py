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

Whole datasets are encoded with `encode(kind, texts, max_length)`, which applies the same tokenizer's
rules with numpy over whole batches (the tokenizer's own vocabulary, 5-15x faster than calling it);
tests check that both give the same ids for every kind of input.
"""

import json
from pathlib import Path

import numpy as np
import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from mimo_hf.data import DataError

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


def encode(kind, texts, max_length):
    """(input_ids, attention_mask), (n, max_length) int64, of `texts` with the tokenizer `kind` ("listops" or
    "byte"), padded with 0: what the tokenizer gives with padding="max_length". ListOps is never truncated
    (a longer expression is an error); bytes are cut at max_length (the LRA Text definition)."""
    encoders = {"listops": encode_listops, "byte": encode_bytes}
    if kind not in encoders:
        raise ValueError(f"no text tokenizer of kind {kind!r}; known: {sorted(encoders)}")
    return encoders[kind](texts, max_length)


# ----------------------------------------------------------------------------------------------------------
# Batch encoders: the tokenizers' rules with numpy (see the module docstring)
# ----------------------------------------------------------------------------------------------------------

def encode_bytes(texts, max_length):
    """Byte-level ids (byte + 1, pad 0) of `texts` (str as UTF-8, or bytes), truncated and padded to max_length.

    The same ids as `byte_tokenizer`, computed with numpy in one pass (the tokenizer takes ~1 us
    per byte; this is ~100x faster). Returns input_ids (n, max_length) and attention_mask (n, max_length), int64.
    """
    blobs = [(text.encode("utf-8") if isinstance(text, str) else bytes(text))[:max_length] for text in texts]
    lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))  # (n,)
    flat = np.frombuffer(b"".join(blobs), dtype=np.uint8)  # (sum of lengths,)
    mask = np.arange(max_length) < lengths[:, None]  # (n, max_length) bool
    ids = np.zeros(mask.shape, dtype=np.int64)
    ids[mask] = flat.astype(np.int64) + BYTE_OFFSET  # boolean assignment fills row by row, i.e. in byte order
    return torch.from_numpy(ids), torch.from_numpy(mask.astype(np.int64))


# Bytes that end a ListOps token: ASCII whitespace (what the tokenizer's WhitespaceSplit splits on) and the
# parentheses that its normalizer turns into spaces.
_LISTOPS_SEPARATOR = np.zeros(256, dtype=bool)
_LISTOPS_SEPARATOR[[9, 10, 11, 12, 13, 32, ord("("), ord(")")]] = True
_KEY_BYTES = 8  # a token is looked up by its first 8 bytes; every vocab entry is shorter
# _BYTE_MASKS[k] keeps the low k bytes of a uint64 (k = 0..8).
_BYTE_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(_KEY_BYTES)] + [2 ** 64 - 1], dtype=np.uint64)


def _pack_tokens(data, starts, lengths):
    """uint64 key per token: its first _KEY_BYTES bytes, little-endian, zero-filled. data: (B,) uint8."""
    padded = np.concatenate([data, np.zeros(_KEY_BYTES, dtype=np.uint8)])
    # A (B + 1,) view whose element i is the (unaligned) little-endian uint64 in bytes i..i+7: no copy.
    words = np.ndarray((len(data) + 1,), dtype="<u8", buffer=padded, strides=(1,))
    return words[starts] & _BYTE_MASKS[np.minimum(lengths, _KEY_BYTES)]  # (T,), bytes after the token zeroed


class _ListOpsLookup:
    """The ListOps tokenizer's vocabulary as sorted uint64 keys, for a vectorized lookup."""

    def __init__(self, tokenizer):
        vocab = tokenizer.get_vocab()  # token -> id, the tokenizer's own table
        tokens = [token.encode("ascii") for token in vocab]
        data = np.frombuffer(b"".join(tokens), dtype=np.uint8)
        lengths = np.array([len(token) for token in tokens])
        assert lengths.max() < _KEY_BYTES, "a vocab entry must fit in a key with a byte to spare"
        keys = _pack_tokens(data, np.cumsum(lengths) - lengths, lengths)
        order = np.argsort(keys)
        self.keys = keys[order]
        self.ids = np.array([vocab[token.decode()] for token in tokens], dtype=np.int64)[order]
        self.unk_id = tokenizer.unk_token_id

    def __call__(self, keys, lengths):
        slot = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        known = (self.keys[slot] == keys) & (lengths < _KEY_BYTES)
        return np.where(known, self.ids[slot], self.unk_id)


def encode_listops(texts, max_length=2000):
    """ListOps ids of `texts`, exactly as `listops_tokenizer` gives them, padded with 0 to max_length.

    The tokenizer's rules (parentheses dropped, whitespace split, WordLevel over its vocab, [UNK] otherwise)
    are applied with numpy over whole batches of ASCII text, ~15x faster than the tokenizer itself (LRA size,
    96k x ~1000 tokens: ~10 s instead of ~150 s of CPU); a batch with non-ASCII text goes through the tokenizer.
    Tests check that both give the same ids.
    Raises DataError (a ValueError) when an expression has more than max_length tokens: cutting a ListOps expression changes
    its value, so it is never truncated. Returns input_ids and attention_mask, (n, max_length) int64.
    """
    tokenizer = listops_tokenizer(max_length)
    lookup = _ListOpsLookup(tokenizer)
    ids = np.zeros((len(texts), max_length), dtype=np.int64)
    lengths = np.zeros(len(texts), dtype=np.int64)
    batch = 4096  # bounds the per-token work arrays (~4096 x 1000 tokens)
    for first in range(0, len(texts), batch):
        blobs = [text.encode("utf-8") for text in texts[first:first + batch]]
        if all(blob.isascii() for blob in blobs):
            rows, positions, tokens = _split_listops(blobs, lookup)
        else:  # Unicode whitespace rules: leave it to the tokenizer
            rows, positions, tokens = _split_with_tokenizer(blobs, tokenizer)
        counts = np.bincount(rows, minlength=len(blobs))  # (batch,) tokens per text
        if counts.max(initial=0) > max_length:
            row = first + int(np.argmax(counts))
            raise DataError(f"ListOps example {row} has {counts.max()} tokens, more than max_length={max_length}; "
                             "ListOps is never truncated (it would change the answer): raise max_length")
        ids[first + rows, positions] = tokens
        lengths[first:first + len(blobs)] = counts
    mask = (np.arange(max_length) < lengths[:, None]).astype(np.int64)  # (n, max_length)
    return torch.from_numpy(ids), torch.from_numpy(mask)


def _split_listops(blobs, lookup):
    """Tokens of ASCII texts: (row, position in row, id) per token, each a (T,) int64 array."""
    data = np.frombuffer(b"\n".join(blobs), dtype=np.uint8)  # (B,) all texts, newline-separated
    inside = ~_LISTOPS_SEPARATOR[data]  # (B,) True on token bytes
    edges = np.diff(np.concatenate([[False], inside, [False]]).astype(np.int8))  # +1 at a start, -1 after an end
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # (T,), (T,)
    tokens = lookup(_pack_tokens(data, starts, ends - starts), ends - starts)
    row_of_byte = np.repeat(np.arange(len(blobs)), [len(blob) + 1 for blob in blobs])[:len(data)]  # (B,)
    rows = row_of_byte[starts]  # (T,) which text each token is in
    first_token = np.searchsorted(rows, np.arange(len(blobs)))  # rows is sorted: index of each text's first token
    return rows, np.arange(len(rows)) - first_token[rows], tokens


def _split_with_tokenizer(blobs, tokenizer):
    """Same output as `_split_listops`, from the tokenizer itself."""
    encodings = tokenizer.backend_tokenizer.encode_batch([blob.decode("utf-8") for blob in blobs],
                                                        add_special_tokens=False)
    per_row = [np.asarray(encoding.ids, dtype=np.int64) for encoding in encodings]
    rows = np.repeat(np.arange(len(per_row)), [len(row) for row in per_row])
    positions = np.concatenate([np.arange(len(row)) for row in per_row]) if per_row else np.zeros(0, np.int64)
    tokens = np.concatenate(per_row) if per_row else np.zeros(0, np.int64)
    return rows, positions.astype(np.int64), tokens
