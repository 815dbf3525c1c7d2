#!/usr/bin/env bash
# Rebuild the zoo exactly as committed: train the four CIFAR-10 models, copy their Hub-ready folders
# into zoo/, evaluate each on the full test split (accuracy at every operating point, throughput side
# by side with the baseline) and write the model cards. Run from the repository root with ../shared
# beside it. The committed zoo came from these commands: the four runs in parallel, one thread each,
# took 52 minutes of wall-clock time on the project's 2-core CPU (sharing it with other work). Running
# them one after the other with --num-threads 2 is faster on an idle machine. Pass RUNS=<folder> to
# keep checkpoints elsewhere (outside git).
set -euo pipefail
RUNS=${RUNS:-runs}
DATA=../shared/data/cifar10
COMMON=(--data-dir "$DATA" --depth 16 --width 2 --epochs 2 --mixup-alpha 0 --num-threads 1 --seed 0)
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

train() {
    local name=$1; shift
    python scripts/train_mimoconv.py "${COMMON[@]}" --output-dir "$RUNS/$name" "$@" > "$RUNS/$name.log" 2>&1
}
mkdir -p "$RUNS"
train wrn16-2-baseline --num-superpositions 1 --binding none --initial-width 1 --activation relu --isometry-coef 0 --binding-coef 0 &
train mimoconv16-2-n2 --num-superpositions 2 --initial-width 2 &
train mimoconv16-2-n4 --num-superpositions 4 --initial-width 2 &
train mimoconv16-2-n4-dynamic --num-superpositions 4 --initial-width 2 --full-capacity-prob 0.8 --low-superpositions 1 &
wait

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
# (deploy_results.json: the cards' Deploy sections and python scripts/deploy_table.py --model mimoconv16-2-n4 --targets).
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
