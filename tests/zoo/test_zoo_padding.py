"""A committed text checkpoint gives the same results on real IMDB reviews whatever padding the caller asks for.

The authors' MIMOFormer is not padding-neutral (mean pooling divides by the padded length, and the
ReLU kernel gives every padded key a weight in the attention normaliser), and its checkpoints are
trained on inputs padded to max_position_embeddings. The model pads shorter inputs to that length
itself, so a pipeline called without padding (one review per call), with the pipeline's batch padding
(to the longest review) and with padding="max_length" must give the same labels and scores, and the
same as the direct call on the inputs evaluation uses (`encode("byte", ...)`, padded to the trained length).
"""

import json
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "zoo" / "mimoformer-att-text1k"
LENGTH = json.loads((FOLDER / "config.json").read_text())["max_position_embeddings"]  # the trained length
IMDB = ROOT.parent / "shared" / "data" / "imdb" / "test-00000-of-00001.parquet"
NUM_REVIEWS = 7  # not a multiple of the 4x4 grid: the batch has a partial group


@pytest.fixture(scope="module")
def reviews():
    if not IMDB.is_file():
        pytest.skip(f"{IMDB} is not here (the IMDB parquet of the shared data folder)")
    import pyarrow.parquet as pq

    table = pq.read_table(IMDB, columns=["text", "label"]).slice(0, 2000).to_pylist()
    # Reviews that fit the trained length (no truncation question), both labels, fixed order.
    fitting = [row for row in table if len(row["text"].encode("utf-8")) < LENGTH]
    negative = [row for row in fitting if row["label"] == 0][:4]
    positive = [row for row in fitting if row["label"] == 1][:NUM_REVIEWS - 4]
    return [row["text"] for row in negative + positive]


def _scores(outputs):
    return [{item["label"]: item["score"] for item in per_input} for per_input in outputs]


def test_text_pipeline_results_do_not_depend_on_padding(reviews):
    from transformers import pipeline

    import mimo_hf  # noqa: F401
    from mimo_hf.data.tokenization import encode

    torch.set_num_threads(1)
    classify = pipeline("text-classification", model=str(FOLDER))
    assert classify.tokenizer.model_max_length == classify.model.config.max_position_embeddings == LENGTH
    top = {"top_k": None}
    # One review per call (each alone in its group; 3 of them keep the test short): no padding at all.
    plain = [_scores(classify([text], **top))[0] for text in reviews[:3]]
    alone_max = [_scores(classify([text], padding="max_length", max_length=LENGTH, **top))[0] for text in reviews[:3]]
    longest = _scores(classify(reviews, batch_size=NUM_REVIEWS, **top))  # the pipeline pads to the longest
    batch_max = _scores(classify(reviews, batch_size=NUM_REVIEWS, padding="max_length", max_length=LENGTH, **top))
    ids, mask = encode("byte", reviews, LENGTH)
    with torch.no_grad():
        probs = classify.model(input_ids=ids, attention_mask=mask).logits.softmax(-1)
    direct = [{classify.model.config.id2label[j]: float(p[j]) for j in range(p.shape[0])} for p in probs]
    for got, expected in ((plain, alone_max), (longest, batch_max), (batch_max, direct)):
        for row_got, row_expected in zip(got, expected):
            assert max(row_got, key=row_got.get) == max(row_expected, key=row_expected.get)
            for label, score in row_expected.items():
                assert row_got[label] == pytest.approx(score, abs=1e-5), label
