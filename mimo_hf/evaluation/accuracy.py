"""Accuracy of a MIMOConv or MIMOFormer model at several operating points: one loop for both.

A batch is a dict of the model's inputs plus "labels" (`data.batches`); an operating point is what the
model's forward takes to run at it (`point_kwargs`: k for MIMOConv, an (m, n) grid for MIMOFormer).
Works in one process or under `accelerate launch`: predictions are gathered with
`gather_for_metrics`, which drops the padding accelerate adds to the last uneven batch, so every
example is counted exactly once.
"""

import torch

from mimo_hf.data.augment import normalize
from mimo_hf.data.batches import split_labels


def point_kwargs(config, point):
    """The forward() keyword that selects an operating point: `num_superpositions=k` for MIMOConv,
    `mimo_grid=(m, n)` for MIMOFormer; None is the config's default point."""
    if point is None:
        return {}
    if getattr(config, "model_type", None) == "mimoformer":
        return {"mimo_grid": tuple(point)}
    return {"num_superpositions": point}


class NormalizedImages:
    """Model inputs of an image batch: uint8 "pixel_values" normalised as the saved image processor does."""

    def __init__(self, mean, std):
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, inputs):
        return {**inputs, "pixel_values": normalize(inputs["pixel_values"], self.mean, self.std)}


@torch.no_grad()
def accuracy_at_points(model, dataloader, points, accelerator, metric, inputs=None, progress=False):
    """{point: {"accuracy": float, "count": int}} over a loader of batch dicts.

    `inputs` maps a batch's inputs to the model's (e.g. `NormalizedImages` for uint8 images); None: as
    they are. Groups of consecutive inputs of a batch share a bundle, as at inference; the batch order
    is the dataset order, so results do not depend on the number of processes.
    """
    from accelerate.utils import broadcast_object_list
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    unwrapped = accelerator.unwrap_model(model)
    results = {}
    for point in points:
        count = 0
        batches = tqdm(dataloader, desc=f"eval {point}", disable=not (progress and accelerator.is_local_main_process))
        for batch in batches:
            features, labels = split_labels(batch)
            preds = model(**(inputs(features) if inputs else features),
                          **point_kwargs(unwrapped.config, point)).logits.argmax(dim=-1)
            preds, refs = accelerator.gather_for_metrics((preds, labels))
            count += refs.shape[0]
            if accelerator.is_main_process:
                metric.add_batch(predictions=preds.cpu().numpy(), references=refs.cpu().numpy())
        # The metric lives on the main process; every process gets its result.
        score = [metric.compute()["accuracy"] if accelerator.is_main_process else None]
        if accelerator.num_processes > 1:
            score = broadcast_object_list(score)
        results[point] = {"accuracy": float(score[0]), "count": int(count)}
    model.train(was_training)
    return results


def load_classifier(name_or_path, revision=None, auto_class="AutoModelForImageClassification"):
    """A classifier from a checkpoint folder, Hub-ready folder or Hub id, in eval mode, with its input
    map: `NormalizedImages` from the saved image processor for images (evaluation sees what a pipeline
    would), None for token ids. Loads through the Auto classes as a Hub user would."""
    import transformers

    import mimo_hf  # noqa: F401  (registers the model types: checkpoint folders carry no code)

    model = getattr(transformers, auto_class).from_pretrained(name_or_path, revision=revision, trust_remote_code=True)
    if auto_class != "AutoModelForImageClassification":
        return model.eval(), None
    processor = transformers.AutoImageProcessor.from_pretrained(name_or_path, revision=revision, trust_remote_code=True)
    return model.eval(), NormalizedImages(processor.image_mean, processor.image_std)
