#!/usr/bin/env bash
# Rebuild the CIFAR-10 zoo: train the four WRN-16-2 models (scripts/train_zoo.py: one at a time, fast preset under
# bf16 autocast, each run's epochs from mimo_hf/training/zoo_runs.py, 5,000 training images held out for
# validation), copy their checkpoint files into zoo/,
# evaluate each on the full test split (accuracy at every operating point, throughput side by side with the
# baseline), export and measure ONNX fp32/int8, and write the widget images. Run from the repository root with
# ../shared beside it. Training is resumable: rerun this script after an interruption and every run continues
# from its last epoch (finished runs are skipped). On the project's 2-core CPUs with bf16 instructions a baseline
# epoch takes about 1 minute and a MIMOConv epoch 1.5-2.5 (each run's log records train_seconds per epoch;
# docs/mimoconv_recipe_study.md has the hours per run). Pass RUNS=<folder>
# to keep checkpoints elsewhere (outside git).
set -euo pipefail
RUNS=${RUNS:-runs/zoo}
DATA=../shared/data/cifar10
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

# --no-export: the steps below copy and evaluate the runs (train_zoo.py alone does it after each run).
python scripts/train_zoo.py --runs-dir "$RUNS" --data-dir "$DATA" --no-export \
    --only wrn16-2-baseline mimoconv16-2-n4 mimoconv16-2-n2 mimoconv16-2-n4-dynamic

# The runs' Hub-ready folders become checkpoint folders (no model code, card or auto_map: the export adds them).
for name in wrn16-2-baseline mimoconv16-2-n2 mimoconv16-2-n4 mimoconv16-2-n4-dynamic; do
    rm -rf "zoo/$name" && python scripts/export_hub_folder.py "$RUNS/$name/hub" --checkpoint-only --output "zoo/$name"
done
python scripts/evaluate_mimoconv.py --model zoo/wrn16-2-baseline --baseline none --data-dir "$DATA" \
    --output-dir zoo/wrn16-2-baseline --results-file eval_results.json
for name in mimoconv16-2-n2 mimoconv16-2-n4 mimoconv16-2-n4-dynamic; do
    python scripts/evaluate_mimoconv.py --model "zoo/$name" --baseline zoo/wrn16-2-baseline --data-dir "$DATA" \
        --output-dir "zoo/$name" --results-file eval_results.json
done
# Deployment (needs the deploy extra, pip install -e ".[deploy]"): ONNX fp32 + int8 exports into each folder's
# onnx/ (git-ignored; published with 'onnx: true' in the push config), then accuracy and images/s of every
# runtime x precision x operating point on 2 threads, the baseline and its export timed in the same run
# (deploy_results.json: the cards' Deploy sections and python scripts/deploy_table.py --model mimoconv16-2-n4-dynamic --targets).
for name in wrn16-2-baseline mimoconv16-2-n2 mimoconv16-2-n4 mimoconv16-2-n4-dynamic; do
    python scripts/export_onnx.py --model "zoo/$name" --output "zoo/$name/onnx" --int8 --calibration-data-dir "$DATA" --overwrite
done
python scripts/evaluate_mimoconv.py --model zoo/wrn16-2-baseline --onnx zoo/wrn16-2-baseline/onnx --baseline none \
    --data-dir "$DATA" --threads 2 --output-dir zoo/wrn16-2-baseline --results-file deploy_results.json
for name in mimoconv16-2-n2 mimoconv16-2-n4 mimoconv16-2-n4-dynamic; do
    python scripts/evaluate_mimoconv.py --model "zoo/$name" --onnx "zoo/$name/onnx" --baseline zoo/wrn16-2-baseline \
        --baseline-onnx zoo/wrn16-2-baseline/onnx --data-dir "$DATA" --threads 2 --output-dir "zoo/$name" \
        --results-file deploy_results.json
done
# The cards' widget images (push_configs/<name>.yaml names each folder's card); the cards themselves are
# rendered when a folder is exported (python scripts/export_hub_folder.py --all --output DIR, push_to_hub.py).
python scripts/export_hub_folder.py zoo/wrn16-2-baseline zoo/mimoconv16-2-n2 zoo/mimoconv16-2-n4 zoo/mimoconv16-2-n4-dynamic --widget-images
# The README's and docs/' generated tables (zoo, deploy, publish) from the new results files.
python scripts/refresh_tables.py
