#!/usr/bin/env bash
# Train and evaluate the MIMOFormer zoo: for each task, the Performer baseline, MIMOFormer att. (4x4,
# with the 2x2 MIMO warm-up) and MIMOFormer att.+MLP (2x2), all of the same size and step budget.
# All runs start at once (they are small; one GPU or many CPU cores serve them side by side), each
# stops at MAX_STEPS or at its wall-clock budget MAX_MINUTES, whichever comes first, and keeps its best
# validation checkpoint as a Hub-ready folder in $RUNS/<name>/hub; the test split is then evaluated at
# every grid, with throughput timed side by side on this machine (eval_results.json in each folder).
#
# These are the commands that produced zoo/{performer,mimoformer-att,mimoformer-attmlp}-* on one
# NVIDIA H200 (all 12 runs sharing it; see each folder's training_args.json, metrics_history.json
# and eval_results.json for the settings, the steps reached and the hardware): a first segment with
# a 5.5-minute budget, then a resumed 2.6-minute continuation that also ran the test evaluations:
#   TASKS="listops-cpu image listops text" MAX_MINUTES=5.5 THROUGHPUT=0 WORKERS=16 bash scripts/reproduce_mimoformer_zoo.sh
#   OMP_NUM_THREADS=1 RESUME=1 TASKS="listops-cpu image listops text" MAX_MINUTES=2.6 THROUGHPUT=0 WORKERS=16 \
#     bash scripts/reproduce_mimoformer_zoo.sh
# CPU throughput was then merged into each eval_results.json with
#   python scripts/evaluate_mimoformer.py --model zoo/<folder> --baseline zoo/performer-<task> --throughput-only ...
# (the exact command is each file's throughput_command).
#
# Knobs (environment variables):
#   TASKS          which task settings to run: listops-cpu (ListOps-CPU: 100-500 tokens), listops
#                  (LRA ListOps: 500-2000 tokens), image (LRA Image), text (LRA Text)   [listops-cpu image]
#   RUNS           run folders                                                          [runs/mimoformer]
#   DATA           generated ListOps data                                               [data]
#   MAX_STEPS      optimizer steps of the schedule                                      [4000]
#   MAX_MINUTES    wall-clock budget per run                                            [120]
#   EVAL_EVERY     validation/checkpoint interval in steps                              [500]
#   WORKERS        processes for ListOps generation                                     [4]
#   THROUGHPUT     0: accuracy only (the evaluations run side by side, so their timings would
#                  disturb each other); time them afterwards with --throughput-only      [1]
#   RESUME         1: continue every run from its latest checkpoint (--resume latest)      [0]
#   SMOKE          1: tiny data and 3 steps, to check the pipeline end to end            [0]
set -euo pipefail
cd "$(dirname "$0")/.."
TASKS=${TASKS:-"listops-cpu image"}
RUNS=${RUNS:-runs/mimoformer}
DATA=${DATA:-data}
MAX_STEPS=${MAX_STEPS:-4000}
MAX_MINUTES=${MAX_MINUTES:-120}
EVAL_EVERY=${EVAL_EVERY:-500}
WORKERS=${WORKERS:-4}
SMOKE=${SMOKE:-0}
THROUGHPUT=${THROUGHPUT:-1}
RESUME=${RESUME:-0}
PY=${PYTHON:-python}
mkdir -p "$RUNS"

SIZE="--hidden-size 64 --num-attention-heads 4 --head-dim 16 --intermediate-size 128 --num-hidden-layers 2 --num-random-features 64"
EXTRA=""
[ "$RESUME" = 1 ] && EXTRA="--resume latest"
GEN_CPU="--preset cpu"
GEN_LRA="--preset lra"
if [ "$SMOKE" = 1 ]; then
  EXTRA="$EXTRA --max-train-samples 64 --max-eval-samples 32 --batch-size 16"
  GEN_CPU="--preset cpu --train-size 64 --validation-size 32 --test-size 32"
  GEN_LRA="--preset lra --train-size 64 --validation-size 32 --test-size 32"
fi

# name -> task flags
task_flags() {
  case "$1" in
    listops-cpu) echo "--task listops --data-dir $DATA/listops-cpu --max-length 500 --batch-size 64 --warmup-steps $((MAX_STEPS / 20))" ;;
    listops) echo "--task listops --data-dir $DATA/listops-lra --max-length 2000 --batch-size 64 --warmup-steps $((MAX_STEPS / 20))" ;;
    image) echo "--task image --batch-size 256 --warmup-steps $((MAX_STEPS / 20))" ;;
    text) echo "--task text --max-length 4000 --batch-size 32 --warmup-steps $((MAX_STEPS / 20))" ;;
    *) echo "unknown task setting $1" >&2; exit 2 ;;
  esac
}

for t in $TASKS; do
  if [ "$t" = listops-cpu ] && [ ! -f "$DATA/listops-cpu/test-00000-of-00001.parquet" ]; then
    $PY scripts/generate_listops.py $GEN_CPU --workers "$WORKERS" --output-dir "$DATA/listops-cpu"
  fi
  if [ "$t" = listops ] && [ ! -f "$DATA/listops-lra/test-00000-of-00001.parquet" ]; then
    $PY scripts/generate_listops.py $GEN_LRA --workers "$WORKERS" --output-dir "$DATA/listops-lra"
  fi
done

VARIANTS="performer:--attention-type performer
mimo_att:--attention-type mimo_att --mimo-m 4 --mimo-n 4
mimo_att_mlp:--attention-type mimo_att_mlp --mimo-m 2 --mimo-n 2"

pids=()
for t in $TASKS; do
  while IFS=: read -r variant flags; do
    name="$t-$variant"
    # shellcheck disable=SC2086
    $PY scripts/train_mimoformer.py $(task_flags "$t") $flags $SIZE $EXTRA --max-steps "$MAX_STEPS" \
      --eval-every "$EVAL_EVERY" --max-minutes "$MAX_MINUTES" --output-dir "$RUNS/$name" >> "$RUNS/$name.log" 2>&1 &
    pids+=($!)
  done <<< "$VARIANTS"
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[ $status = 0 ] || { echo "some training runs failed; see $RUNS/*.log" >&2; tail -n 5 "$RUNS"/*.log >&2; }

# Evaluate the test split at every grid, all runs at once; each MIMOFormer is timed beside the Performer.
pids=()
for t in $TASKS; do
  for variant in performer mimo_att mimo_att_mlp; do
    hub="$RUNS/$t-$variant/hub"
    [ -f "$hub/model.safetensors" ] || { echo "no checkpoint in $hub" >&2; status=1; continue; }
    baseline=()
    [ "$variant" = performer ] || baseline=(--baseline "$RUNS/$t-performer/hub")
    smoke=()
    [ "$SMOKE" = 1 ] && smoke=(--max-eval-samples 32 --repeats 1 --warmup 0 --throughput-batch-size 16)
    [ "$THROUGHPUT" = 1 ] || smoke+=(--no-throughput)
    $PY scripts/evaluate_mimoformer.py --model "$hub" "${baseline[@]}" "${smoke[@]}" \
      --output-dir "$hub" --results-file eval_results.json > "$RUNS/$t-$variant.eval.log" 2>&1 &
    pids+=($!)
  done
done
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[ $status = 0 ] || { echo "some evaluations failed; see $RUNS/*.eval.log" >&2; tail -n 5 "$RUNS"/*.eval.log >&2; }
exit $status
