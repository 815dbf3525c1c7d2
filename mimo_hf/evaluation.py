"""Accuracy of a MIMOConv model at several operating points, through an `evaluate` metric module.

Works in one process or under `accelerate launch`: predictions are gathered with
`gather_for_metrics`, which drops the padding accelerate adds to the last uneven batch, so every
example is counted exactly once.
"""

import torch

from .augment import normalize


def predict(model, pixel_values, k):
    """Class ids (B,) for normalised images at operating point k."""
    return model(pixel_values=pixel_values, num_superpositions=k).logits.argmax(dim=-1)


@torch.no_grad()
def evaluate_operating_points(model, dataloader, points, accelerator, metric, mean, std, progress=False):
    """{k: {"accuracy": float, "count": int}} over a dataloader of (uint8 images, labels).

    Groups of k consecutive images of a batch share a bundle, as at inference; the batch order is the
    dataset order, so results do not depend on the number of processes.
    """
    from accelerate.utils import broadcast_object_list
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    results = {}
    for k in points:
        count = 0
        batches = tqdm(dataloader, desc=f"eval k={k}", disable=not (progress and accelerator.is_local_main_process))
        for images, labels in batches:
            preds = predict(model, normalize(images, mean, std), k)
            preds, refs = accelerator.gather_for_metrics((preds, labels))
            count += refs.shape[0]
            if accelerator.is_main_process:
                metric.add_batch(predictions=preds.cpu().numpy(), references=refs.cpu().numpy())
        # The metric lives on the main process; every process gets its result.
        score = [metric.compute()["accuracy"] if accelerator.is_main_process else None]
        if accelerator.num_processes > 1:
            score = broadcast_object_list(score)
        results[k] = {"accuracy": float(score[0]), "count": int(count)}
    model.train(was_training)
    return results


def load_classifier(name_or_path, revision=None):
    """A MIMOConv classifier and its (mean, std) from a Hub-ready folder or a Hub id, in eval mode.

    Loads through `AutoModelForImageClassification` exactly as a Hub user would; the normalisation
    comes from the folder's saved image processor, so evaluation sees what a pipeline would.
    """
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(name_or_path, revision=revision, trust_remote_code=True)
    processor = AutoImageProcessor.from_pretrained(name_or_path, revision=revision, trust_remote_code=True)
    return model.eval(), (tuple(processor.image_mean), tuple(processor.image_std))
