"""Fine-tuning checkpoints on a user's own data (issue 11): the README's examples as written, a 3-class text
CSV with custom columns and string labels, clear errors for bad data, the checkpoint's processor in
training, streaming, and `MIMOTrainer` for generic loops."""

import functools
import json
import os
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mimo_hf.training.recipes import MIMOConvRecipe, MIMOFormerRecipe

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
MNIST, IMDB = SHARED / "mnist", SHARED / "imdb"
HELPERS = ROOT / "tests" / "helpers"
BASELINE = ROOT / "zoo" / "wrn16-2-baseline"
needs_data = pytest.mark.skipif(not (MNIST.is_dir() and IMDB.is_dir()), reason="needs ../shared/data/{mnist,imdb}")


def _env():
    return dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1",
                PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def _readme_block(language, section="## Fine-tune on your data"):
    text = (ROOT / "README.md").read_text()
    text = text[text.index(section):]
    text = text[:text.index("\n## ", 1)]
    start = text.index(f"```{language}\n") + len(language) + 4
    return text[start:text.index("```", start)]


def _commands(block):
    """The command lines of a bash block (backslash continuations joined), each split as the shell would."""
    return [shlex.split(line) for line in block.replace("\\\n", " ").splitlines() if line.strip()
            and not line.lstrip().startswith("#")]


def _pipeline_child(script, cwd):
    """Run `script` in a Python where `import mimo_hf` fails (a Hub user's machine); returns its stdout."""
    prelude = ("import sys; sys.path.insert(0, %r)\nfrom hub_testing import BlockMimoHf\n"
               "sys.meta_path.insert(0, BlockMimoHf())\n" % str(HELPERS))
    env = _env()
    env.pop("PYTHONPATH")
    proc = subprocess.run([sys.executable, "-c", prelude + script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@needs_data
def test_readme_finetune_examples_run_as_written_and_the_digits_model_is_accurate(tmp_path, monkeypatch):
    """The README block in a fresh clone layout (repo/ beside shared/); the MNIST model then classifies
    held-out MNIST test digits through `pipeline` with mimo_hf blocked, labels = the folder names."""
    clone = tmp_path / "repo"
    clone.mkdir()
    (tmp_path / "shared").symlink_to(ROOT.parent / "shared")
    for name in ("scripts", "zoo"):
        (clone / name).symlink_to(ROOT / name)
    monkeypatch.chdir(clone)
    for command in _commands(_readme_block("bash")):
        assert command[0] == "python" and command[1].startswith("scripts/"), command
        # In this process (one torch import for all five commands); the same argv a shell would pass.
        monkeypatch.setattr(sys, "argv", command[1:])
        runpy.run_path(command[1], run_name="__main__")

    hub = clone / "runs" / "mnist-finetune" / "hub"
    config = json.loads((hub / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(10)] == [str(d) for d in range(10)]
    assert {"modeling_mimoconv.py", "README.md", "training_args.json"} <= {p.name for p in hub.iterdir()}
    assert json.loads((hub / "training_args.json").read_text())["model_name_or_path"] == "zoo/wrn16-2-baseline"
    # Held out: digits of the MNIST *test* split the run never saw, written as a folder like the user's.
    from mimo_hf.data.examples import write_image_folder

    write_image_folder(MNIST, tmp_path / "held-out", split="test", per_class=10)
    # One child where mimo_hf is not installed: the README's Python snippet as written, then the held-out digits.
    script = (_readme_block("python") + "\nimport glob, json\n"
              "files = sorted(glob.glob(%r))\n"
              "print(json.dumps([[o[0]['label'], f.split('/')[-2]] for o, f in zip(digits(files, top_k=1), files)]))\n"
              % str(tmp_path / "held-out" / "*" / "*.png"))
    out = _pipeline_child(script, clone)
    pairs = json.loads(out.strip().splitlines()[-1])
    assert "[{'label': " in out and ("'neg'" in out or "'pos'" in out)  # the snippet's two prints
    assert len(pairs) == 100
    accuracy = np.mean([label == truth for label, truth in pairs])
    assert accuracy >= 0.7, f"held-out MNIST accuracy {accuracy:.2f} after fine-tuning"

    text_hub = clone / "runs" / "imdb-finetune" / "hub"
    text_config = json.loads((text_hub / "config.json").read_text())
    assert text_config["id2label"] == {"0": "neg", "1": "pos"}  # the data's labels, the checkpoint's classifier
    assert "kept" in (text_hub / "README.md").read_text()


def _tiny_text_checkpoint(folder):
    """A tiny MIMOFormer text classifier (byte tokenizer, 2x2 grid) saved as a Hub-ready folder."""
    from mimo_hf.data.tokenization import byte_tokenizer
    from mimo_hf.hub.export import save_hub_folder
    from mimo_hf.models.mimoformer.configuration_mimoformer import MIMOFormerConfig
    from mimo_hf.models.mimoformer.modeling_mimoformer import (
        MIMOFormerForSequenceClassification,
    )

    torch.manual_seed(0)
    config = MIMOFormerConfig(attention_type="mimo_att", mimo_m=2, mimo_n=2, num_random_features=16,
                              vocab_size=258, max_position_embeddings=256, hidden_size=32, num_attention_heads=2,
                              head_dim=16, intermediate_size=32, num_hidden_layers=1, pad_token_id=0,
                              pooling="masked_mean", id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1})
    save_hub_folder(MIMOFormerForSequenceClassification(config).eval(), folder, byte_tokenizer(256))
    return folder


def _style_csv(path, texts):
    """3 classes by how a review is written: upper case, lower case, lower case with '_' for spaces."""
    import csv

    styles = {"SHOUTED": str.upper, "quiet": str.lower, "snake_case": lambda t: t.lower().replace(" ", "_")}
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["body", "style"])
        for i, text in enumerate(texts):
            name = list(styles)[i % 3]
            writer.writerow([styles[name](text[:150]), name])


@needs_data
def test_text_checkpoint_learns_a_three_class_csv_with_custom_columns_and_string_labels(tmp_path):
    import pyarrow.parquet as pq
    from transformers import pipeline

    texts = pq.read_table(next(IMDB.glob("train-*.parquet")), columns=["text"]).column("text").to_pylist()[:330]
    _style_csv(tmp_path / "train.csv", texts[:270])
    _style_csv(tmp_path / "validation.csv", texts[270:])
    base = _tiny_text_checkpoint(tmp_path / "base")
    out = tmp_path / "run"
    from mimo_hf.training.mimoformer import train

    hub = train(MIMOFormerRecipe.from_flags([
        "--model-name-or-path", str(base), "--train-file", str(tmp_path / "train.csv"), "--validation-file",
        str(tmp_path / "validation.csv"), "--text-column", "body", "--label-column", "style", "--max-length", "128",
        "--max-steps", "60", "--batch-size", "16", "--warmup-steps", "3", "--lr", "3e-3", "--eval-every", "60",
        "--num-threads", "1", "--output-dir", str(out)]))
    hub = Path(hub)
    config = json.loads((hub / "config.json").read_text())
    assert config["id2label"] == {"0": "SHOUTED", "1": "quiet", "2": "snake_case"}
    classify = pipeline("text-classification", model=str(hub), trust_remote_code=True)
    import csv

    with open(tmp_path / "validation.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    predicted = [r["label"] for r in classify([row["body"] for row in rows], truncation=True)]
    assert set(predicted) <= {"SHOUTED", "quiet", "snake_case"}
    accuracy = np.mean([p == row["style"] for p, row in zip(predicted, rows)])
    history = json.loads((hub / "metrics_history.json").read_text())
    assert accuracy >= 0.6, f"validation accuracy {accuracy:.2f} through the pipeline (chance 0.33)"
    assert history[-1]["val_accuracy@2x2"] == pytest.approx(accuracy, abs=1e-9)  # training's numbers = pipeline's


# ------------------------------------------------------------------------------------------- bad data, flags

def _folder(root, classes, per_class=2, size=28, mode="L"):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = (size, size) if mode == "L" else (size, size, 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root / name / f"{i}.png")
    return root


def _image_recipe(tmp_path, *flags):
    return MIMOConvRecipe.from_flags(["--model-name-or-path", str(BASELINE), "--output-dir", str(tmp_path / "o"),
                                      *flags])


def _image_data(recipe):
    from transformers import AutoImageProcessor

    from mimo_hf.training.finetune import image_data

    return image_data(recipe, AutoImageProcessor.from_pretrained(BASELINE), 3)


def test_architecture_comes_from_the_checkpoint_and_a_contradicting_flag_is_named(tmp_path):
    recipe = _image_recipe(tmp_path, "--train-dir", str(tmp_path))
    assert (recipe.num_superpositions, recipe.binding, recipe.width, recipe.activation) == (1, "none", 2, "relu")
    with pytest.raises(ValueError, match=r"--depth 10 .*depth=16.*--width 4 .*width=2"):
        _image_recipe(tmp_path, "--train-dir", str(tmp_path), "--depth", "10", "--width", "4")
    # The command a card quotes leaves out what the checkpoint implies and parses back to the same recipe.
    assert "--binding" not in recipe.command() and "--validation-size" not in recipe.command()
    assert MIMOConvRecipe.from_flags(shlex.split(recipe.command())[2:]).record() == recipe.record()
    # A flag equal to the checkpoint's value is no contradiction.
    assert _image_recipe(tmp_path, "--train-dir", str(tmp_path), "--depth", "16").depth == 16
    dynamic = _image_recipe(tmp_path, "--train-dir", str(tmp_path), "--model-name-or-path",
                            str(ROOT / "zoo" / "mimoconv16-2-n4-dynamic"))
    assert dynamic.trained_operating_points == sorted(json.loads(
        (ROOT / "zoo" / "mimoconv16-2-n4-dynamic" / "config.json").read_text())["trained_superpositions"])


def test_bad_image_data_gets_errors_that_name_the_problem(tmp_path):
    train = _folder(tmp_path / "train", ["cat", "dog", "owl"])
    with pytest.raises(ValueError, match=r"labels missing from the validation split.*'owl'"):
        _image_data(_image_recipe(tmp_path, "--train-dir", str(train), "--validation-dir",
                                  str(_folder(tmp_path / "val", ["cat", "dog"]))))
    (train / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot decode image .*dog/broken\.png"):
        _image_data(_image_recipe(tmp_path, "--train-dir", str(train), "--validation-size", "3"))
    (train / "dog" / "broken.png").unlink()
    (train / "dog" / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"not images .*notes\.txt"):
        _image_data(_image_recipe(tmp_path, "--train-dir", str(train)))
    (train / "dog" / "notes.txt").unlink()
    import pandas as pd

    pd.DataFrame({"picture": [str(p) for p in sorted(train.rglob("*.png"))], "kind": ["a"] * 6}).to_csv(
        tmp_path / "train.csv", index=False)
    with pytest.raises(ValueError, match=r"no column 'image' \(--image-column\).*'picture'"):
        _image_data(_image_recipe(tmp_path, "--train-file", str(tmp_path / "train.csv"), "--label-column", "kind"))


def test_unknown_text_column_is_named(tmp_path):
    import pandas as pd

    from mimo_hf.training.finetune import text_data

    pd.DataFrame({"body": ["a", "b", "c", "d"] * 3, "style": ["x", "y"] * 6}).to_csv(tmp_path / "t.csv", index=False)
    recipe = MIMOFormerRecipe.from_flags(["--model-name-or-path", str(ROOT / "zoo" / "mimoformer-att-text1k"),
                                          "--train-file", str(tmp_path / "t.csv"), "--text-column", "review",
                                          "--label-column", "style", "--max-steps", "10", "--warmup-steps", "1",
                                          "--output-dir", str(tmp_path / "o")])
    with pytest.raises(ValueError, match=r"no column 'review' \(--text-column\).*'body'"):
        text_data(recipe, None)


def test_training_sees_what_the_pipeline_sees_in_memory_and_streamed(tmp_path):
    """Grayscale 28x28 images of a folder: the training tensors, normalised, equal the checkpoint processor's
    pipeline inputs (resized to 32, converted to RGB), whether decoded up front or streamed."""
    from transformers import AutoImageProcessor

    from mimo_hf.data.augment import normalize

    train = _folder(tmp_path / "train", ["a", "b"], per_class=3)
    val = _folder(tmp_path / "val", ["a", "b"], per_class=2)
    flags = ["--train-dir", str(train), "--validation-dir", str(val)]
    memory = _image_data(_image_recipe(tmp_path, *flags))
    streamed = _image_data(_image_recipe(tmp_path, *flags, "--in-memory-limit-mb", "0"))
    assert not memory.streamed and streamed.streamed
    import pandas as pd  # the same images named by a CSV of paths (--train-file) with string labels

    pd.DataFrame({"image": [str(p) for p in sorted(train.rglob("*.png"))], "label": ["a"] * 3 + ["b"] * 3}).to_csv(
        tmp_path / "train.csv", index=False)
    pd.DataFrame({"image": [str(p) for p in sorted(val.rglob("*.png"))], "label": ["a"] * 2 + ["b"] * 2}).to_csv(
        tmp_path / "val.csv", index=False)
    from_file = _image_data(_image_recipe(tmp_path, "--train-file", str(tmp_path / "train.csv"), "--validation-file",
                                          str(tmp_path / "val.csv")))
    assert from_file.label_names == memory.label_names == ["a", "b"]
    processor = AutoImageProcessor.from_pretrained(BASELINE)
    files = sorted(train.rglob("*.png"))
    expected = processor([Image.open(f) for f in files], return_tensors="pt")["pixel_values"]
    for data in (memory, streamed, from_file):
        items = [data.train_set[i] for i in range(len(files))]
        assert [int(item["labels"]) for item in items] == [0, 0, 0, 1, 1, 1]
        pixels = torch.stack([item["pixel_values"] for item in items])
        assert pixels.dtype == torch.uint8 and pixels.shape == (6, 3, 32, 32)
        torch.testing.assert_close(normalize(pixels, data.mean, data.std), expected, atol=1e-5, rtol=0)


def test_data_dir_schema_picks_the_dataset(tmp_path):
    recipe = MIMOConvRecipe.from_flags(["--data-dir", str(MNIST), "--output-dir", str(tmp_path)])
    assert recipe.dataset == "ylecun/mnist"
    from mimo_hf.data.images import load_image_dataset

    with pytest.raises(ValueError, match="pass --dataset ylecun/mnist"):
        load_image_dataset("uoft-cs/cifar10", data_dir=str(MNIST), split="test")


# ------------------------------------------------------------------------------------------- generic loops

def test_trainer_trains_a_dynamic_mimoconv_at_both_operating_points_with_the_regularisers(tmp_path):
    from transformers import TrainingArguments

    from mimo_hf.data.batches import TensorDict
    from mimo_hf.models.mimoconv.configuration_mimoconv import MIMOConvConfig
    from mimo_hf.models.mimoconv.modeling_mimoconv import MIMOConvForImageClassification
    from mimo_hf.training.trainer import MIMOTrainer

    torch.manual_seed(0)
    config = MIMOConvConfig(num_superpositions=2, depth=10, width=1, initial_width=1, image_size=8,
                            trained_superpositions=[1, 2], num_labels=3)
    model = MIMOConvForImageClassification(config)
    data = TensorDict({"pixel_values": torch.randn(64, 3, 8, 8), "labels": torch.randint(0, 3, (64,))})
    seen = []
    forward = model.forward

    @functools.wraps(forward)  # Trainer reads the input names off the signature
    def recording_forward(*args, **kwargs):
        seen.append(kwargs.get("num_superpositions"))
        return forward(*args, **kwargs)

    model.forward = recording_forward
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=12, report_to=[],
                             use_cpu=True, save_strategy="no", logging_strategy="no", disable_tqdm=True)
    trainer = MIMOTrainer(model=model, args=args, train_dataset=data, binding_coef=0.1, isometry_coef=1e-4)
    trainer.train()
    assert set(seen) == {1, 2} and trainer.operating_point_counts.keys() == {1, 2}
    assert sum(trainer.operating_point_counts.values()) == 12
    # The loss of a step is cross-entropy at its operating point + both regularisers.
    model.train()
    batch = {"pixel_values": data.tensors["pixel_values"][:8], "labels": data.tensors["labels"][:8]}
    trainer.rng = np.random.default_rng(1)
    k = trainer.operating_point()["num_superpositions"]
    trainer.rng = np.random.default_rng(1)
    torch.manual_seed(3)
    loss = trainer.compute_loss(model, batch)
    torch.manual_seed(3)
    expected = (forward(**batch, num_superpositions=k).loss + 0.1 * model.binding_regularization()
                + 1e-4 * model.isometry_regularization())
    torch.testing.assert_close(loss, expected)
    assert float(model.binding_regularization().detach()) > 0


def test_a_pair_task_trains_a_dual_encoder_checkpoint_and_the_flag_must_match_it(tmp_path):
    """--text-column-2: both documents of each row reach the dual encoder; labels from the data."""
    import pandas as pd

    from mimo_hf.data.tokenization import byte_tokenizer
    from mimo_hf.hub.export import save_hub_folder
    from mimo_hf.models.mimoformer.configuration_mimoformer import MIMOFormerConfig
    from mimo_hf.models.mimoformer.modeling_mimoformer import MIMOFormerForSequenceClassification
    from mimo_hf.training.mimoformer import train

    torch.manual_seed(0)
    config = MIMOFormerConfig(attention_type="mimo_att", mimo_m=2, mimo_n=2, num_random_features=8, vocab_size=258,
                              max_position_embeddings=64, hidden_size=16, num_attention_heads=2, head_dim=8,
                              intermediate_size=16, num_hidden_layers=1, pad_token_id=0, pooling="masked_mean",
                              dual_encoder=True, id2label={0: "a", 1: "b"}, label2id={"a": 0, "b": 1})
    base = tmp_path / "base"
    save_hub_folder(MIMOFormerForSequenceClassification(config).eval(), base, byte_tokenizer(64))
    rows = [("same text", "same text", "match"), ("one thing", "another", "differ"), ("x y z", "x y z", "match"),
            ("left", "right", "differ"), ("alpha", "alpha", "match"), ("up", "down", "differ")] * 4
    frame = pd.DataFrame(rows, columns=["first", "second", "relation"])
    frame.to_csv(tmp_path / "pairs.csv", index=False)
    flags = ["--model-name-or-path", str(base), "--train-file", str(tmp_path / "pairs.csv"), "--text-column", "first",
             "--label-column", "relation", "--max-length", "32", "--max-steps", "4", "--batch-size", "4",
             "--warmup-steps", "1", "--eval-every", "4", "--num-threads", "1"]
    with pytest.raises(ValueError, match="pass --text-column-2"):
        train(MIMOFormerRecipe.from_flags([*flags, "--output-dir", str(tmp_path / "no-pair")]))
    hub = Path(train(MIMOFormerRecipe.from_flags([*flags, "--text-column-2", "second", "--output-dir",
                                                  str(tmp_path / "run")])))
    saved = json.loads((hub / "config.json").read_text())
    assert saved["dual_encoder"] is True and saved["id2label"] == {"0": "differ", "1": "match"}
    history = json.loads((hub / "metrics_history.json").read_text())
    assert history and 0 <= history[-1]["val_accuracy@2x2"] <= 1
    assert json.loads((hub / "fine_tuning_data.json").read_text())["text_columns"] == ["first", "second"]
