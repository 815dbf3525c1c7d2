#!/usr/bin/env python
"""Throughput of the training data path (batched tensor augmentation) vs a training step.

Times `TrainTransform` (random reflect-padded crop, flip, normalise) on real CIFAR-10 images (the
shipped test sample by default) and one optimizer step of a MIMOConv model on the same batch, so the
printed ratio says how much slack the data path leaves: data loading must never starve the model.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from mimo_hf import MIMOConvConfig, MIMOConvForImageClassification
from mimo_hf.data.augment import TrainTransform
from mimo_hf.evaluation.throughput import machine_description
from mimo_hf.data.images import load_image_dataset

ROOT = Path(__file__).resolve().parents[1]


def _median_seconds(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(ROOT / "mimo_hf" / "samples" / "cifar10"), help="parquet folder (default: shipped sample)")
    p.add_argument("--split", default="test", help="split to read (default: test)")
    p.add_argument("--batch-size", type=int, default=512, help="images per batch (default: 512 = 128 bundles x N=4)")
    p.add_argument("--num-superpositions", type=int, default=4, help="capacity N of the model timed beside it (default: 4)")
    p.add_argument("--depth", type=int, default=16, help="Wide ResNet depth (default: 16)")
    p.add_argument("--width", type=int, default=2, help="Wide ResNet width (default: 2)")
    p.add_argument("--initial-width", type=float, default=2, help="stem width factor (default: 2)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats; median reported (default: 5)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--output", default=None, help="write the result as JSON here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    data = load_image_dataset("uoft-cs/cifar10", data_dir=args.data_dir, split=args.split)
    images = data.images[torch.arange(args.batch_size) % len(data)]  # (B, 3, 32, 32) uint8, real images
    labels = data.labels[torch.arange(args.batch_size) % len(data)]
    augment = TrainTransform("cifar10", generator=torch.Generator().manual_seed(0))
    augment_s = _median_seconds(lambda: augment(images), args.repeats)

    config = MIMOConvConfig(num_superpositions=args.num_superpositions, depth=args.depth, width=args.width,
                            initial_width=args.initial_width, num_labels=10)
    model = MIMOConvForImageClassification(config).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        loss = model(pixel_values=augment(images), labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step_s = _median_seconds(step, args.repeats)
    row = {"batch_size": args.batch_size, "augment_images_per_s": round(args.batch_size / augment_s),
           "train_step_images_per_s": round(args.batch_size / step_s, 1),
           "augmentation_share_of_step": round(augment_s / step_s, 4),
           "model": f"MIMOConv-{args.depth}-{args.width} N={args.num_superpositions}", **machine_description()}
    print(json.dumps(row, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(row, indent=2))
    return row


if __name__ == "__main__":
    main()
