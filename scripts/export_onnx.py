#!/usr/bin/env python
"""Export a MIMOConv / MIMOFormer checkpoint to ONNX, one graph per operating point, verified against PyTorch.

Writes OUTPUT/model_k{k}.onnx for every operating point k (MIMOFormer: model_grid{m}x{n}.onnx):
input `pixel_values` float32 (B, C, H, W) with a dynamic batch size (MIMOFormer: `input_ids` and
`attention_mask` int64 (B, L), batch and length dynamic), output `logits`. Any batch size works and a
partial last group is handled exactly as in PyTorch. With --int8, also OUTPUT/model_k{k}_int8.onnx:
static int8 (QDQ) calibrated on real training images, preprocessed by the checkpoint's own image
processor. Every graph is run in ONNX Runtime at several batch sizes (partial groups included) and
compared with the PyTorch model before anything is written: the max |logit diff| is printed, and
fp32 must agree to --tolerance. OUTPUT/deploy.json records the operating points, files, checks,
quantization and calibration settings; the checkpoint's preprocessor is saved beside them, so the
folder runs on its own (mimo_hf.deploy.runtime.DeployedClassifier). The Hub layout puts OUTPUT in the
Hub-ready folder's onnx/ sub-folder.

Needs the deploy extra: pip install -e ".[deploy]".

Examples:
    python scripts/export_onnx.py --model zoo/mimoconv16-2-n4 --output zoo/mimoconv16-2-n4/onnx \\
        --int8 --calibration-data-dir ../shared/data/cifar10
    python scripts/export_onnx.py --model zoo/mimoconv16-2-n4-dynamic --output runs/onnx --operating-points 1 4
    python scripts/export_onnx.py --model zoo/mimoformer-attmlp-listops-cpu --output runs/listops-onnx
"""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="Hub-ready folder or Hub id of a MIMOConv / MIMOFormer checkpoint")
    p.add_argument("--revision", default=None, help="Hub revision (commit, branch or tag) for --model")
    p.add_argument("--output", required=True, help="folder for the ONNX files and deploy.json (e.g. <model folder>/onnx)")
    p.add_argument("--operating-points", nargs="+", default=None,
                   help="operating points to export: k values for MIMOConv (e.g. 1 4), grids MxN for MIMOFormer "
                        "(e.g. 1x1 2x2); default: every one")
    p.add_argument("--int8", action="store_true", help="also write statically quantized int8 (QDQ) graphs (MIMOConv)")
    p.add_argument("--calibration-data-dir", default=None,
                   help="local folder of {split}-*.parquet shards in the Hub layout of --calibration-dataset "
                        "(e.g. ../shared/data/cifar10)")
    p.add_argument("--calibration-dataset", default=None,
                   help="Hub dataset id of the calibration images, loaded with datasets unless --calibration-data-dir "
                        "is given (then it names the columns); default schema: uoft-cs/cifar10")
    p.add_argument("--calibration-split", default="train", help="split the calibration images come from (default: train)")
    p.add_argument("--calibration-size", type=int, default=256, help="calibration images (default: 256)")
    p.add_argument("--verify-images", type=int, default=64,
                   help="further images of the calibration split, not used for calibration, on which every graph is "
                        "compared with PyTorch (default: 64)")
    p.add_argument("--min-int8-agreement", type=float, default=None,
                   help="refuse an int8 graph whose top-1 agrees with PyTorch on fewer than this fraction of those "
                        "images (default: report only)")
    p.add_argument("--per-tensor", action="store_true", help="int8: one weight scale per tensor instead of per channel")
    p.add_argument("--per-tensor-batchnorm", action="store_true",
                   help="int8: one scale for each BatchNorm's scale vector (onnxruntime's own choice for 1-D weights) "
                        "instead of one per channel")
    p.add_argument("--full-range", action="store_true",
                   help="int8: 8-bit weights instead of the default 7-bit ones (7 bits avoid the u8 x s8 saturation of "
                        "ONNX Runtime on x86 CPUs without VNNI; see mimo_hf/deploy/quantization.py)")
    p.add_argument("--quantize-stem", action="store_true",
                   help="int8: also quantize the stem convolution (kept in fp32 by default, see quantization.py)")
    p.add_argument("--calibrate-method", choices=["MinMax", "Entropy", "Percentile"], default="MinMax",
                   help="int8 calibration method of onnxruntime.quantization (default: MinMax)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=None,
                   help="verification batch sizes (default: 1, k-1, k, k+1, 2k+1, 3k)")
    p.add_argument("--tolerance", type=float, default=1e-3, help="max |logit diff| allowed for fp32 (default: 1e-3)")
    p.add_argument("--threads", type=int, default=None, help="torch and ONNX Runtime threads (default: their choice)")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration sample and the synthetic inputs (default: 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export in --output")
    args = p.parse_args(argv)
    if args.int8 and not (args.calibration_data_dir or args.calibration_dataset):
        p.error("--int8 needs calibration images: pass --calibration-data-dir DIR or --calibration-dataset ID")
    if not args.int8 and (args.calibration_data_dir or args.calibration_dataset):
        p.error("--calibration-data-dir / --calibration-dataset are only used with --int8")
    return args


def main(argv=None):
    args = parse_args(argv)
    import torch

    from mimo_hf.deploy import MissingDependencyError
    from mimo_hf.deploy.onnx_export import ExportVerificationError, export_checkpoint
    from mimo_hf.deploy.quantization import CalibrationSource, QuantSettings

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    calibration = None
    if args.int8:
        calibration = CalibrationSource(dataset=args.calibration_dataset or "uoft-cs/cifar10",
                                        data_dir=args.calibration_data_dir, split=args.calibration_split,
                                        count=args.calibration_size, seed=args.seed)
    settings = QuantSettings(per_channel=not args.per_tensor, reduce_range=not args.full_range,
                             calibrate_method=args.calibrate_method, keep_stem_fp32=not args.quantize_stem,
                             batchnorm_per_channel=not args.per_tensor_batchnorm)
    command = "python " + " ".join([os.path.relpath(__file__, ROOT)] + (sys.argv[1:] if argv is None else list(argv)))
    try:
        return export_checkpoint(args.model, args.output, operating_points=args.operating_points, int8=args.int8,
                                 calibration=calibration, quant_settings=settings, batch_sizes=args.batch_sizes,
                                 tolerance=args.tolerance, verify_images=args.verify_images,
                                 min_int8_agreement=args.min_int8_agreement, overwrite=args.overwrite,
                                 threads=args.threads, revision=args.revision, command=command, seed=args.seed)
    except (MissingDependencyError, ExportVerificationError, FileExistsError, FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
