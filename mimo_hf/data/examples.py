"""Small example datasets in the formats users bring, written from the local Hub-schema parquet copies:
an image folder (one sub-folder per class, PNG files) and a CSV of texts with string labels. What the
README's "Fine-tune on your data" examples train on (scripts/write_example_data.py)."""

from pathlib import Path


def _rows_per_class(labels, per_class, skip):
    """Row indices: for every class, its rows number skip .. skip + per_class - 1 in file order."""
    seen, rows = {}, []
    for i, label in enumerate(labels):
        count = seen.get(label, 0)
        seen[label] = count + 1
        if skip <= count < skip + per_class:
            rows.append(i)
    short = sorted(label for label, count in seen.items() if count < skip + per_class)
    if short:
        raise ValueError(f"classes {short} have fewer than {skip + per_class} rows")
    return rows


def _fresh(output):
    output = Path(output)
    if output.exists() and (output.is_file() or any(output.iterdir())):
        raise FileExistsError(f"{output} exists; choose a new output path (nothing is overwritten)")
    return output


def _table(data_dir, split):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mimo_hf.data.images import parquet_shards

    shards = parquet_shards(data_dir, split)
    return pa.concat_tables([pq.read_table(p) for p in shards]), shards


def _names(shards, column, values):
    """Class names from the parquet's `datasets` ClassLabel metadata, else the values as text."""
    import pyarrow.parquet as pq
    from datasets import Features

    feature = Features.from_arrow_schema(pq.read_schema(shards[0])).get(column)
    return {v: feature.names[v] if hasattr(feature, "names") else str(v) for v in set(values)}


def write_image_folder(data_dir, output, split="train", per_class=20, skip=0, image_column="image",
                       label_column="label"):
    """Write `per_class` images of every class of a parquet image dataset as `output/<class>/<row>.png`
    (the class's rows from number `skip` on, in file order); returns the number written."""
    import io

    import PIL.Image

    output = _fresh(output)
    table, shards = _table(data_dir, split)
    labels = table.column(label_column).to_pylist()
    names = _names(shards, label_column, labels)
    images = table.column(image_column)
    rows = _rows_per_class(labels, per_class, skip)
    for i in rows:
        item = images[i].as_py()
        folder = output / names[labels[i]]
        folder.mkdir(parents=True, exist_ok=True)
        PIL.Image.open(io.BytesIO(item["bytes"])).save(folder / f"{split}-{i:05d}.png")
    return len(rows)


def write_text_csv(data_dir, output, split="train", per_class=20, skip=0, text_column="review",
                   label_column="sentiment"):
    """Write `per_class` texts of every class of a parquet text dataset (IMDB: `text`, `label`) as a CSV
    with columns `text_column`, `label_column` (the class names as strings); returns the number written."""
    import csv

    output = _fresh(output)
    table, shards = _table(data_dir, split)
    labels = table.column("label").to_pylist()
    names = _names(shards, "label", labels)
    texts = table.column("text").to_pylist()
    rows = _rows_per_class(labels, per_class, skip)
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([text_column, label_column])
        writer.writerows([texts[i], names[labels[i]]] for i in rows)
    return len(rows)
