#!/usr/bin/env python
"""Convert a MIMOConv or MIMOFormer checkpoint saved by the authors' code into a Hub-ready folder.

Examples:

    python scripts/convert_reference_checkpoint.py --checkpoint model.pt --output mimoconv-cifar10 \\
        --dataset cifar10
    python scripts/convert_reference_checkpoint.py --architecture mimoformer --checkpoint listops.model \\
        --output mimoformer-listops --task listops --pooling MEAN

Architecture settings not given on the command line are read off the checkpoint's key names and
shapes (MIMOConv: skip-init from its alpha values; MIMOFormer: attention type, grid, sizes, layers,
vocabulary, positions, head). A MIMOFormer state dict does not record the pooling, the layer count of a
tied-weight model, nor the head count of a softmax model: those flags are required when they apply.
Explicit settings that contradict the checkpoint are reported as unused/missing keys or shape
mismatches. Exit status 2 on any conversion error.
"""

import argparse
import os
import sys

from mimo_hf.convert import ARCHITECTURES, MIMOCONV_ONLY, MIMOFORMER_ONLY, convert_checkpoint
from mimo_hf.convert.common import whole_number
from mimo_hf.convert.mimoformer import TASKS


def positive_number(text):
    """Initial width factor: an int (4) or a float such as 0.5, as long as 16 * s is whole."""
    return whole_number(float(text))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Unset architecture flags default to what the checkpoint's keys and shapes imply.",
    )
    parser.add_argument("--architecture", choices=ARCHITECTURES, default="mimoconv",
                        help="mimoconv: the authors' SuperWideResnet / SuperWideISONet; mimoformer: their ModelForSC "
                        "/ ModelForSCDual (LRA) (default: %(default)s)")
    parser.add_argument("--checkpoint", required=True, metavar="PATH",
                        help="authors' .pt/.pth file: a state dict or a dict with 'model_state_dict' "
                        "(loaded with weights_only=True; a DataParallel 'module.' prefix is stripped)")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="folder to write: config.json, model.safetensors, model code, and the preprocessor "
                        "(MIMOConv: preprocessor_config.json; MIMOFormer: the task's tokenizer, if it has one)")
    parser.add_argument("--num-labels", type=int, help="classifier outputs (both architectures)")

    conv = parser.add_argument_group("MIMOConv (--architecture mimoconv)")
    conv.add_argument("--dataset", choices=("cifar10", "cifar100", "mnist"),
                      help="training data: normalisation, label names (LABEL_i for cifar100), 1 input channel "
                      "and 20x20 inputs for mnist (default: cifar10)")
    conv.add_argument("--depth", type=int, help="Wide ResNet depth 6n+4, e.g. 10, 16, 28")
    conv.add_argument("--width", type=int, help="width factor w (stage widths 16w, 32w, 64w)")
    conv.add_argument("--initial-width", type=positive_number, help="stem width factor s (C = 16s stem channels)")
    conv.add_argument("--binding", type=str.lower, choices=("hrr", "mbat", "none"),
                      help="binding; the authors' HRR/MBAT/None are accepted too")
    conv.add_argument("--num-superpositions", type=int, metavar="N", help="superposition capacity N")
    conv.add_argument("--activation", type=str.lower, choices=("relu", "prelu", "srelu"),
                      help="trunk activation: relu (SuperWideResnet), prelu or srelu (SuperWideISONet)")
    conv.add_argument("--skip-init", action=argparse.BooleanOptionalAction, default=None,
                      help="blocks scale their branch by a learned alpha (default: on iff some alpha "
                      "in the checkpoint is non-zero)")
    conv.add_argument("--num-channels", type=int, help="input image channels")
    conv.add_argument("--image-size", type=int,
                      help="input height and width (default: 32; 20 for mnist, the authors' centre crop)")

    former = parser.add_argument_group(
        "MIMOFormer (--architecture mimoformer)",
        "Flags are named after MIMOFormerConfig fields. Read off the checkpoint when not given: attention type "
        "(mha.attn.bindings_embedding: mimo_att_mlp, mha.attn.bindings: mimo_att, a projection matrix alone: "
        "performer, none: softmax), grid and head size (bindings (1, M, N, 1, 1, D_h)), random features (projection "
        "(R, D_h)), vocabulary, width and positions (embeddings; none stored: sinusoidal), heads (W_q rows / head "
        "size), MLP size, layers (transformer_{i} blocks), classifier size and labels, dual encoder (head input 4d).",
    )
    former.add_argument("--task", choices=TASKS,
                        help="LRA task: picks the shipped tokenizer (listops: word-level; text, retrieval: byte-level; "
                        "image, pathfinder: none, pixels are token ids) and the label names; retrieval <=> dual "
                        "encoder (default: no tokenizer, labels LABEL_i)")
    former.add_argument("--attention-type", type=str.lower,
                        choices=("softmax", "performer", "mimo_att", "mimo_att_mlp", "performer-256", "mimoformer",
                                 "blockformer"),
                        help="attention; the authors' attn_type names performer-256 / mimoformer (att.) / blockformer "
                        "(att.+MLP) are accepted too")
    former.add_argument("--mimo-m", type=int, metavar="M", help="grid rows M (query bundles sum over m)")
    former.add_argument("--mimo-n", type=int, metavar="N", help="grid columns N (key/value bundles sum over n)")
    former.add_argument("--vocab-size", type=int, help="token vocabulary (CLS pooling prepends id vocab_size - 1)")
    former.add_argument("--max-position-embeddings", type=int,
                        help="longest input (the authors' max_seq_len); REQUIRED for sinusoidal positions")
    former.add_argument("--hidden-size", type=int, help="model width d (the authors' embedding_dim)")
    former.add_argument("--num-attention-heads", type=int,
                        help="heads H (the authors' num_head); REQUIRED, or --head-dim, for softmax attention")
    former.add_argument("--head-dim", type=int, help="head size D_h")
    former.add_argument("--intermediate-size", type=int, help="MLP width (the authors' transformer_hidden_dim)")
    former.add_argument("--num-hidden-layers", type=int,
                        help="encoder blocks (the authors' num_layers); REQUIRED for tied-weight checkpoints "
                        "(model.transformer.*), which store one block")
    former.add_argument("--num-random-features", type=int, metavar="R", help="random features (the authors' rp_dim)")
    former.add_argument("--pooling", type=str.lower, choices=("mean", "cls"),
                        help="REQUIRED: the authors' pooling_mode, MEAN (all positions, padding counted) or CLS "
                        "(prepend id vocab_size - 1, read position 0); either case")
    return parser, parser.parse_args(argv)


def main(argv=None):
    parser, args = parse_args(argv)
    wrong = MIMOFORMER_ONLY if args.architecture == "mimoconv" else MIMOCONV_ONLY
    given = ["--" + name.replace("_", "-") for name in wrong if getattr(args, name) is not None]
    if given:
        parser.error(f"{', '.join(given)} do(es) not apply to --architecture {args.architecture}")
    try:
        summary = convert_checkpoint(vars(args))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    print(f"converted {args.checkpoint}: {summary}")
    print(f"wrote {args.output}:")
    for name in sorted(os.listdir(args.output)):
        print(f"  {name} ({os.path.getsize(os.path.join(args.output, name)):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
