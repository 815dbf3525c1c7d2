"""Accuracy of MIMOConv / MIMOFormer models at several operating points, through an `evaluate` metric module.

Works in one process or under `accelerate launch`: predictions are gathered with
`gather_for_metrics`, which drops the padding accelerate adds to the last uneven batch, so every
example is counted exactly once.
"""

import torch

from mimo_hf.data.augment import normalize


def predict(model, pixel_values, k):
    """Class ids (B,) for normalised images at operating point k."""
    return model(pixel_values=pixel_values, num_superpositions=k).logits.argmax(dim=-1)


def sequence_inputs(batch):
    """Model inputs of a token batch (input_ids, attention_mask[, input_ids_2, attention_mask_2], labels)."""
    inputs = {"input_ids": batch[0], "attention_mask": batch[1]}
    if len(batch) == 5:  # dual encoder (retrieval)
        inputs.update(input_ids_2=batch[2], attention_mask_2=batch[3])
    return inputs


def predict_sequences(model, batch, grid):
    """Class ids (B,) and labels for a token batch (see `sequence_inputs`)."""
    return model(**sequence_inputs(batch), mimo_grid=grid).logits.argmax(dim=-1), batch[-1]


@torch.no_grad()
def accuracy_at_points(model, dataloader, points, accelerator, metric, predict_batch, progress=False):
    """{point: {"accuracy": float, "count": int}}; `predict_batch(model, batch, point)` -> (preds, labels).

    Groups of consecutive inputs of a batch share a bundle, as at inference; the batch order is the
    dataset order, so results do not depend on the number of processes.
    """
    from accelerate.utils import broadcast_object_list
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    results = {}
    for point in points:
        count = 0
        batches = tqdm(dataloader, desc=f"eval {point}", disable=not (progress and accelerator.is_local_main_process))
        for batch in batches:
            preds, labels = predict_batch(model, batch, point)
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


def evaluate_operating_points(model, dataloader, points, accelerator, metric, mean, std, progress=False):
    """MIMOConv: {k: {"accuracy", "count"}} over a dataloader of (uint8 images, labels)."""

    def predict_images(model, batch, k):
        images, labels = batch
        return predict(model, normalize(images, mean, std), k), labels

    return accuracy_at_points(model, dataloader, points, accelerator, metric, predict_images, progress)


def evaluate_grids(model, dataloader, grids, accelerator, metric, progress=False):
    """MIMOFormer: {(m, n): {"accuracy", "count"}} over a dataloader of token batches."""
    return accuracy_at_points(model, dataloader, [tuple(g) for g in grids], accelerator, metric, predict_sequences, progress)


def load_classifier(name_or_path, revision=None):
    """A MIMOConv classifier and its (mean, std) from a Hub-ready folder or a Hub id, in eval mode.

    Loads through `AutoModelForImageClassification` exactly as a Hub user would; the normalisation
    comes from the folder's saved image processor, so evaluation sees what a pipeline would.
    """
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(name_or_path, revision=revision, trust_remote_code=True)
    processor = AutoImageProcessor.from_pretrained(name_or_path, revision=revision, trust_remote_code=True)
    return model.eval(), (tuple(processor.image_mean), tuple(processor.image_std))
