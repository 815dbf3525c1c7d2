"""The MIMOConv card's parts (image classification on CIFAR; the plain Wide ResNet baseline too)."""


from mimo_hf.data.images import CIFAR10_SAMPLE
from mimo_hf.data.labels import CIFAR10
from mimo_hf.hub.cards import Architecture, CardParts, _read_json, baseline_row, in_zoo, operating_point_results, percent

DATASET_NAMES = {"uoft-cs/cifar10": "CIFAR-10", "uoft-cs/cifar100": "CIFAR-100", "ylecun/mnist": "MNIST"}
# Widget images: the first image of these classes in the CIFAR-10 test sample shipped with the package.
CIFAR10_WIDGET_CLASSES = ("cat", "ship")


def cifar10_widget_samples(id2label):
    """[(file name, label, row of the shipped sample)] of the widget images, or [] for other label sets."""
    import pyarrow.parquet as pq

    names = {int(k): v for k, v in id2label.items()}
    if sorted(names.values()) != sorted(CIFAR10):
        return []
    labels = pq.read_table(CIFAR10_SAMPLE, columns=["label"]).column("label").to_pylist()
    by_name = {v: k for k, v in names.items()}
    return [(f"example_{name}.png", name, labels.index(by_name[name])) for name in CIFAR10_WIDGET_CLASSES]


def _sample_image(row):
    import io

    import pyarrow.parquet as pq
    from PIL import Image

    image = pq.read_table(CIFAR10_SAMPLE, columns=["img"]).column("img")[row].as_py()
    return Image.open(io.BytesIO(image["bytes"])).convert("RGB")


def write_mimoconv_assets(ctx):
    """Save the widget images as PNG; an image is rewritten only when its pixels differ (PNG bytes
    depend on the zlib build, pixels do not)."""
    import numpy as np
    from PIL import Image

    written = []
    for name, _, row in cifar10_widget_samples(ctx.config["id2label"]):
        image, path = _sample_image(row), ctx.folder / name
        if path.is_file() and np.array_equal(np.asarray(Image.open(path).convert("RGB")), np.asarray(image)):
            continue
        image.save(path, format="PNG")
        written.append(path)
    return written


def _deploy_section(ctx):
    """The Deploy section's variables (ONNX / int8, from deploy_results.json), None without that file."""
    from mimo_hf.deploy.hub import card_deploy

    return card_deploy(ctx.folder, published=ctx.push.onnx)


def mimoconv_card_parts(ctx):
    """Card parts of a MIMOConv (or plain Wide ResNet baseline) image classifier."""
    from mimo_hf.training.recipes import MIMOConvRecipe

    config, results, args = ctx.config, ctx.results, ctx.training_args
    n = config["num_superpositions"]
    trained = config.get("trained_superpositions") or [n]
    dataset = DATASET_NAMES.get(results["dataset"], results["dataset"])
    jpeg = "JPEG" in (results.get("data_note") or "")
    dataset_name = f"{dataset} (JPEG quality-75 copy)" if jpeg else dataset
    # Widget images only where the folder has them (scripts/export_hub_folder.py --widget-images writes them).
    samples = [sample for sample in cifar10_widget_samples(config["id2label"]) if (ctx.folder / sample[0]).is_file()]
    rows = [dict(k=row["operating_point"], accuracy=percent(row["accuracy"]), accuracy_value=row["accuracy"],
                 images_per_s=row.get("images_per_s"),
                 speedup=row.get("speedup_vs_baseline"), trained=row["operating_point"] in trained)
            for row in results["results"]]
    final = ctx.history[-1] if ctx.history else {}
    has_throughput = all(row["images_per_s"] is not None for row in rows)
    best = max(row["accuracy_value"] for row in rows)
    # The recipe as it ran: the record, with settings it predates at the value the run used.
    recipe = vars(MIMOConvRecipe.from_record(args)) if args else {}
    validation_counts = [value for key, value in final.items() if key.startswith("val_count@")]
    processor = _read_json(ctx.folder / "preprocessor_config.json", default={})
    variables = dict(
        title=ctx.push.repo_name,
        is_baseline=config["binding"] == "none",
        capacity=n,
        default_k=config.get("default_superpositions") or n,
        operating_points=[row["k"] for row in rows],
        trained_points=trained,
        depth=config["depth"],
        width=config["width"],
        stem_channels=int(16 * config["initial_width"]),
        binding=config["binding"],
        activation=config["activation"],
        rows=rows,
        baseline=baseline_row(ctx),
        dataset=dataset,
        dataset_id=results["dataset"],
        jpeg=jpeg,
        split=results["split"],
        num_examples=results["num_examples"],
        data_note=results.get("data_note"),
        hardware=results["hardware"],
        throughput_batch_size=results.get("throughput_batch_size"),
        has_throughput=has_throughput,
        most_accurate=[row["k"] for row in rows if row["accuracy_value"] == best],
        fastest=max(rows, key=lambda row: row["images_per_s"])["k"] if has_throughput and len(rows) > 1 else None,
        plot="accuracy_throughput.png" if (ctx.folder / "accuracy_throughput.png").is_file() else None,
        eval_command=results["command"],
        train_command=MIMOConvRecipe.from_record(args).command() if args else None,
        args=recipe,
        validation_count=validation_counts[0] if validation_counts else None,
        in_zoo=in_zoo(ctx),
        num_channels=config.get("num_channels", 3),
        num_labels=len(config["id2label"]),
        epochs=len(ctx.history),
        final_validation=[(key.split("@")[1], percent(value)) for key, value in final.items()
                          if key.startswith("val_accuracy@")],
        samples=[dict(file=name, label=label, row=row) for name, label, row in samples],
        image_size=config.get("image_size"),
        image_mean=processor.get("image_mean"),
        image_std=processor.get("image_std"),
        deploy=_deploy_section(ctx),
    )
    return CardParts(
        pipeline_tag="image-classification",
        eval_results=operating_point_results(ctx, "image-classification", "Image Classification", dataset_name),
        tags=["mimoconv", "wide-resnet"],
        widget=[{"src": ctx.hub_file_url(name), "example_title": f"{label} ({dataset} test image)"}
                for name, label, row in samples],
        variables=variables,
    )


ARCHITECTURE = Architecture(card_parts=mimoconv_card_parts, write_assets=write_mimoconv_assets)
