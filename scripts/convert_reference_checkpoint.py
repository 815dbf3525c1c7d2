#!/usr/bin/env python
"""Convert a MIMOConv checkpoint saved by the authors' code into a Hub-ready folder.

Example:

    python scripts/convert_reference_checkpoint.py --checkpoint model.pt --output mimoconv-cifar10 \\
        --dataset cifar10

Architecture settings not given on the command line are read off the checkpoint's key names and
shapes (skip-init from its alpha values); explicit settings that contradict the checkpoint are
reported as unused/missing keys or shape mismatches. Exit status 2 on any conversion error.
"""

import argparse
import os
import sys

from mimo_hf.conversion import convert_reference_checkpoint, load_reference_state_dict, make_reference_config


def positive_number(text):
    """Initial width factor: an int (4) or a float such as 0.5, as long as 16 * s is whole."""
    value = float(text)
    return int(value) if value.is_integer() else value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Unset architecture flags default to what the checkpoint's keys and shapes imply.",
    )
    parser.add_argument("--checkpoint", required=True, metavar="PATH",
                        help="authors' .pt/.pth file: a state dict or a dict with 'model_state_dict' "
                        "(loaded with weights_only=True; a DataParallel 'module.' prefix is stripped)")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="folder to write: config.json, model.safetensors, model code, preprocessor_config.json")
    parser.add_argument("--dataset", choices=("cifar10", "cifar100", "mnist"), default="cifar10",
                        help="training data: normalisation, label names (LABEL_i for cifar100), 1 input channel "
                        "and 20x20 inputs for mnist (default: %(default)s)")
    parser.add_argument("--depth", type=int, help="Wide ResNet depth 6n+4, e.g. 10, 16, 28")
    parser.add_argument("--width", type=int, help="width factor w (stage widths 16w, 32w, 64w)")
    parser.add_argument("--initial-width", type=positive_number, help="stem width factor s (C = 16s stem channels)")
    parser.add_argument("--binding", type=str.lower, choices=("hrr", "mbat", "none"),
                        help="binding; the authors' HRR/MBAT/None are accepted too")
    parser.add_argument("--num-superpositions", type=int, metavar="N", help="superposition capacity N")
    parser.add_argument("--activation", type=str.lower, choices=("relu", "prelu", "srelu"),
                        help="trunk activation: relu (SuperWideResnet), prelu or srelu (SuperWideISONet)")
    parser.add_argument("--skip-init", action=argparse.BooleanOptionalAction, default=None,
                        help="blocks scale their branch by a learned alpha (default: on iff some alpha "
                        "in the checkpoint is non-zero)")
    parser.add_argument("--num-labels", type=int, help="classifier outputs")
    parser.add_argument("--num-channels", type=int, help="input image channels")
    parser.add_argument("--image-size", type=int,
                        help="input height and width (default: 32; 20 for mnist, the authors' centre crop)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    overrides = {
        "depth": args.depth, "width": args.width, "initial_width": args.initial_width, "binding": args.binding,
        "num_superpositions": args.num_superpositions, "activation": args.activation, "skip_init": args.skip_init,
        "num_labels": args.num_labels, "num_channels": args.num_channels, "image_size": args.image_size,
    }
    try:
        state_dict = load_reference_state_dict(args.checkpoint)
        config = make_reference_config(state_dict, args.dataset, **overrides)
        convert_reference_checkpoint(state_dict, args.output, config, dataset=args.dataset)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    print(
        f"converted {args.checkpoint}: depth={config.depth} width={config.width} initial_width={config.initial_width} "
        f"binding={config.binding} N={config.num_superpositions} activation={config.activation} "
        f"skip_init={config.skip_init} labels={config.num_labels} dataset={args.dataset}"
    )
    print(f"wrote {args.output}:")
    for name in sorted(os.listdir(args.output)):
        print(f"  {name} ({os.path.getsize(os.path.join(args.output, name)):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
