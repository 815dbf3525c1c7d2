"""The LRA tokenizers: vocab layouts, byte fidelity, parenthesis stripping, save/reload in v4-loadable form."""

import json

import pytest
from tokenizers import pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from mimo_hf.data.tokenization import (
    encode_bytes,
    encode_listops,
    BYTE_VOCAB_SIZE,
    LISTOPS_VOCAB,
    byte_tokenizer,
    bytes_to_unicode,
    listops_tokenizer,
    save_tokenizer,
)

# Every byte that can occur in valid UTF-8: ASCII (control characters included), lead bytes of 2/3/4-byte
# sequences (0xC2..0xF4) and all continuation bytes (0x80..0xBF).
UTF8_SAMPLE = "".join(chr(c) for c in range(128)) + "".join(
    chr(c) for c in [*range(0x80, 0x800, 7), *range(0x800, 0x10000, 61), *range(0x10000, 0x110000, 997)]
    if not 0xD800 <= c < 0xE000)  # no surrogates: they are not encodable


@pytest.fixture(scope="module")
def listops():
    return listops_tokenizer()


@pytest.fixture(scope="module")
def bytes_tok():
    return byte_tokenizer()


def test_listops_vocab_layout(listops):
    """PAD 0, UNK 1, operators, "]", digits, and [CLS] last (the authors' CLS pooling uses vocab_size - 1)."""
    vocab = listops.get_vocab()
    assert [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])] == LISTOPS_VOCAB
    assert LISTOPS_VOCAB[:7] == ["[PAD]", "[UNK]", "[MAX", "[MIN", "[MED", "[SM", "]"]
    assert [vocab[str(d)] for d in range(10)] == list(range(7, 17))
    assert len(listops) == 18 and listops.convert_tokens_to_ids("[CLS]") == 17
    assert listops.pad_token_id == 0 and listops.unk_token_id == 1 and listops.cls_token_id == 17


def test_listops_ignores_lra_parentheses(listops):
    """A raw LRA tsv line (every argument in parentheses) and our generated line give the same ids."""
    ours = "[MAX 2 9 [MIN 4 7 ] 0 ]"
    raw = "( ( ( ( [MAX 2 ) 9 ) ( ( ( [MIN 4 ) 7 ) ] ) ) 0 ) ] )"
    assert listops(raw)["input_ids"] == listops(ours)["input_ids"] == [2, 9, 16, 3, 11, 14, 6, 7, 6]
    assert listops("(( [SM 1\t2 ]))\n")["input_ids"] == [5, 8, 9, 6]  # any whitespace, parentheses glued or not
    assert listops("[FIRST 3 ]")["input_ids"] == [1, 10, 6]  # unknown symbols map to [UNK]
    assert listops.decode(listops(ours)["input_ids"]) == ours


def test_byte_vocab_layout(bytes_tok):
    """PAD 0, byte b -> b + 1, [CLS] last = 257; every one of the 256 bytes has its id (no UNK needed)."""
    table = bytes_to_unicode()
    assert set(table.values()) == set(pre_tokenizers.ByteLevel.alphabet())  # the mapping the pre-tokenizer uses
    assert len(bytes_tok) == BYTE_VOCAB_SIZE == 258
    assert bytes_tok.pad_token_id == 0 and bytes_tok.cls_token_id == 257
    assert [bytes_tok.convert_tokens_to_ids(table[b]) for b in range(256)] == list(range(1, 257))
    assert bytes_tok.convert_ids_to_tokens(list(range(1, 257))) == [table[b] for b in range(256)]


def test_every_utf8_byte_round_trips(bytes_tok):
    """One id per UTF-8 byte (multibyte characters give several ids), and decoding gives the text back."""
    data = UTF8_SAMPLE.encode("utf-8")
    assert set(range(0x80)) | set(range(0x80, 0xC0)) | set(range(0xC2, 0xF5)) <= set(data)
    ids = bytes_tok(UTF8_SAMPLE)["input_ids"]
    assert ids == [b + 1 for b in data]
    assert bytes_tok.decode(ids) == UTF8_SAMPLE
    assert bytes_tok("é€𝄞")["input_ids"] == [b + 1 for b in "é€𝄞".encode()]  # 2 + 3 + 4 bytes
    assert len(bytes_tok("é€𝄞")["input_ids"]) == 9


def test_special_token_text_stays_bytes(bytes_tok):
    """A literal "[PAD]" / "[CLS]" in a review is five bytes, not the special id."""
    text = "see [CLS] and [PAD] <br />"
    assert bytes_tok(text)["input_ids"] == [b + 1 for b in text.encode()]


def test_no_special_tokens_padding_truncation(listops, bytes_tok):
    """No BOS/EOS/CLS added; pads with 0 on the right; truncates on the right; two model inputs."""
    assert listops.model_input_names == bytes_tok.model_input_names == ["input_ids", "attention_mask"]
    assert listops.model_max_length == 2000 and bytes_tok.model_max_length == 4000
    assert bytes_tok("ab")["input_ids"] == [98, 99]
    batch = bytes_tok(["ab", "abcdef"], padding="max_length", truncation=True, max_length=4)
    assert batch["input_ids"] == [[98, 99, 0, 0], [98, 99, 100, 101]]
    assert batch["attention_mask"] == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert listops(["[SM 1 2 ]", "3"], padding=True)["input_ids"] == [[5, 8, 9, 6], [10, 0, 0, 0]]


@pytest.mark.parametrize("make", [listops_tokenizer, byte_tokenizer])
def test_save_reload_round_trip(make, tmp_path):
    """save_tokenizer writes a v4-loadable class name; AutoTokenizer reloads the same behaviour."""
    tokenizer = make()
    save_tokenizer(tokenizer, tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(reloaded, PreTrainedTokenizerFast)
    sample = "( [MAX 2 ( [MED 1 5 ] ) ] )" if make is listops_tokenizer else UTF8_SAMPLE + " [CLS]"
    assert reloaded(sample)["input_ids"] == tokenizer(sample)["input_ids"]
    assert reloaded.get_vocab() == tokenizer.get_vocab()
    assert (reloaded.pad_token_id, reloaded.cls_token_id) == (tokenizer.pad_token_id, tokenizer.cls_token_id)
    assert reloaded.model_max_length == tokenizer.model_max_length
    assert reloaded.model_input_names == ["input_ids", "attention_mask"]


def test_encode_listops_matches_the_tokenizer_on_odd_input():
    """The vectorized encoder reproduces the tokenizer: any whitespace, glued parentheses, unknown and special
    words, empty texts; a batch with non-ASCII text (tokenizer fallback) gives the same ids."""
    odd = ["", "   ", "7", "( ( [MAX 2 ) 9 ) ] )", "[FIRST 3 ]\t[CLS]\n[PAD] [UNK] 12 x ((8))", " [SM 1 2 ] ",
           "[MAXIMUMS 1 ]", "\x0b[MED\x0c4\r5 ]", "a\x1fb", "[MAX" * 3]
    expected = listops_tokenizer()(odd, padding="max_length", max_length=12)
    ids, mask = encode_listops(odd, 12)
    assert ids.tolist() == expected["input_ids"] and mask.tolist() == expected["attention_mask"]
    ids, mask = encode_listops(odd + ["[MAX 1 é ]"], 12)
    assert ids[:-1].tolist() == expected["input_ids"] and ids[-1, :5].tolist() == [2, 8, 1, 6, 0]
    with pytest.raises(ValueError, match="example 4 has 9 tokens"):
        encode_listops(odd, 8)


def test_encode_bytes_truncates_multibyte_text():
    """4000-byte truncation counts bytes, not characters; bytes input works too."""
    text = "é" * 2500  # 5000 bytes
    ids, mask = encode_bytes([text, b"\x00\xff"], 4000)
    assert ids.shape == mask.shape == (2, 4000)
    assert ids[0].tolist() == [b + 1 for b in text.encode()[:4000]] and int(mask[0].sum()) == 4000
    assert ids[1, :3].tolist() == [1, 256, 0] and mask[1, :3].tolist() == [1, 1, 0]
