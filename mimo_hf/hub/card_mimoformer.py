"""The MIMOFormer card's parts (Long Range Arena sequence classification; the Performer baseline too)."""

from mimo_hf.data.listops import LISTOPS_PRESETS
from mimo_hf.data.lra import DEFAULT_VALIDATION_SIZES, LRA_TASKS
from mimo_hf.hub.cards import NO_PIPELINE, Architecture, CardParts, baseline_row, in_zoo, operating_point_results, percent
from mimo_hf.settings import grid_text

# The MIMOFormer results JSON (scripts/evaluate_mimoformer.py) holds `task`, `dataset`, `split`,
# `num_examples`, `sequence_length`, `results: [{grid, inputs_per_group, accuracy, sequences_per_s?,
# speedup_vs_baseline?}]`, `baseline: {model, accuracy, sequences_per_s?}` (None for the Performer),
# `hardware` (where the accuracies were measured, with `gpu` when on a GPU), `command`, and, once the
# throughput was timed, `throughput_hardware`, `throughput_batch_size`, `throughput_command`.

VARIANTS = {"performer": "Performer baseline", "softmax": "softmax Transformer baseline",
            "mimo_att": "MIMOFormer att.", "mimo_att_mlp": "MIMOFormer att.+MLP"}
LRA_TITLES = {"image": "LRA Image", "text": "LRA Text"}


def text_title(sequence_length):
    """LRA Text reads the first 4,000 bytes of a review; a model trained on fewer reads a different task
    (the zoo's Text-1k), named by its length so that nobody compares it with LRA Text scores."""
    if sequence_length == LRA_TASKS["text"]["max_length"]:
        return LRA_TITLES["text"]
    return f"Text-{sequence_length // 1000}k" if sequence_length % 1000 == 0 else f"Text-{sequence_length}"


# Widget examples, also the quickstart's input (one short input keeps the offline test fast).
# ListOps: prefix expressions, tokens separated by spaces, "]" closes an operator; label = the value.
LISTOPS_EXAMPLES = [("[MAX 2 9 [MIN 4 7 ] 0 ]", "MAX(2, 9, MIN(4, 7), 0) = 9"),
                    ("[SM 3 [MED 1 5 8 ] 6 ]", "SM = (3 + MED(1, 5, 8) + 6) mod 10 = 4")]
TEXT_EXAMPLES = [("A warm, funny and beautifully acted film. I loved every minute of it.", "a positive review"),
                 ("Dull, predictable and far too long. I wanted my two hours back.", "a negative review")]
def listops_setting(dataset):
    """The `LISTOPS_PRESETS` key named by a ListOps results `dataset` ("... --preset cpu)"), or None."""
    for key in LISTOPS_PRESETS:
        if f"--preset {key}" in dataset:
            return key
    return None


def training_segments(history):
    """The runs of a (possibly resumed) training: [{first_step, last_step, minutes, stopped_by}]. A
    resumed run restarts its wall clock, so a drop in `minutes` starts a new segment."""
    segments = []
    for entry in history:
        if not segments or entry["minutes"] < segments[-1]["minutes"]:
            segments.append({"first_step": entry["step"], "last_step": entry["step"], "minutes": entry["minutes"],
                             "stopped_by": None})
        segment = segments[-1]
        segment.update(last_step=entry["step"], minutes=entry["minutes"], stopped_by=entry.get("stopped_by"))
    return segments


def _training_story(ctx):
    """Steps reached, wall-clock segments and the best checkpoint, all from metrics_history.json."""
    args, history = ctx.training_args, ctx.history
    if not history:
        return None
    segments = training_segments(history)
    best = [entry for entry in history if entry.get("best")]
    best = best[-1] if best else history[-1]
    val_key = next(key for key in best if key.startswith("val_accuracy@"))
    final = history[-1]
    return dict(
        segments=segments,
        resumed=len(segments) > 1,
        final_step=final["step"],
        max_steps=args["max_steps"],
        completed=final["step"] >= args["max_steps"],
        percent=round(100 * final["step"] / args["max_steps"]),
        final_lr=final["lr"],
        best_step=best["step"],
        best_grid=val_key.split("@")[1],
        best_validation=percent(best[val_key]),
        validation_count=best.get(f"val_count@{val_key.split('@')[1]}"),
        eval_every=args.get("eval_every"),
    )


def _task_of(ctx):
    """(task, ListOps preset or None, task title) of the results JSON."""
    task, dataset = ctx.results["task"], ctx.results["dataset"]
    setting = listops_setting(dataset) if task == "listops" else None
    if task == "listops" and setting is None:
        raise ValueError(f"{ctx.push.results_path}: ListOps dataset {dataset!r} names no known "
                         f"--preset ({sorted(LISTOPS_PRESETS)})")
    if setting:
        return task, setting, LISTOPS_PRESETS[setting].title
    return task, setting, text_title(ctx.results["sequence_length"]) if task == "text" else LRA_TITLES[task]


def _grid_rows(ctx, trained):
    return [dict(grid=row["grid"], inputs=row["inputs_per_group"], accuracy=percent(row["accuracy"]),
                 sequences_per_s=row.get("sequences_per_s"), speedup=row.get("speedup_vs_baseline"),
                 trained=row["grid"] in trained)
            for row in ctx.results["results"]]


def _closest_faster_row(ctx):
    """The grid above 1x1 that is faster than the baseline and loses the least accuracy to it (None if none).

    A card below its baseline names this trade-off, so a reader sees what superposition costs at its best
    operating point, not only at the full grid."""
    baseline = ctx.results.get("baseline")
    if not baseline:
        return None
    faster = [row for row in ctx.results["results"]
              if row["grid"] != "1x1" and (row.get("speedup_vs_baseline") or 0) > 1]
    if not faster:
        return None
    best = max(faster, key=lambda row: row["accuracy"])
    return dict(grid=best["grid"], accuracy=percent(best["accuracy"]), speedup=f"{best['speedup_vs_baseline']:.2f}x",
                points=f"{100 * (best['accuracy'] - baseline['accuracy']):+.2f}")


def _eval_batch_size(command):
    """The accuracy evaluation's batch size: its command's --batch-size, else the script's default."""
    import shlex

    from mimo_hf.evaluation.mimoformer import MIMOFormerEvaluation

    words = shlex.split(command)
    for i, word in enumerate(words):
        if word == "--batch-size" and i + 1 < len(words):
            return int(words[i + 1])
        if word.startswith("--batch-size="):
            return int(word.split("=", 1)[1])
    return MIMOFormerEvaluation.batch_size


def _measurements(ctx, rows):
    """The template variables that quote the results JSON (what was measured, where, with which command)."""
    results = ctx.results
    throughput_device = results.get("throughput_device", "cpu")
    return dict(
        accuracy_device="GPU" if results["hardware"].get("gpu") else "CPU",
        throughput_on_cpu=throughput_device == "cpu",
        # A separate --throughput-only run (e.g. accuracy on a GPU, throughput on a CPU) has its own command.
        separate_throughput=bool(results.get("throughput_command")) and results.get("throughput_command") != results["command"],
        eval_batch_size=_eval_batch_size(results["command"]),
        dataset_id=results["dataset"], split=results["split"], num_examples=results["num_examples"],
        sequence_length=results["sequence_length"], hardware=results["hardware"], eval_command=results["command"],
        has_throughput=all(row["sequences_per_s"] is not None for row in rows),
        throughput_hardware=results.get("throughput_hardware"),
        throughput_batch_size=results.get("throughput_batch_size"),
        throughput_command=results.get("throughput_command"),
        plot="accuracy_throughput.png" if (ctx.folder / "accuracy_throughput.png").is_file() else None,
    )


def mimoformer_card_parts(ctx):
    """Card parts of a MIMOFormer (or Performer baseline) LRA sequence classifier."""
    from mimo_hf.training.recipes import LRA_RECIPES, MIMOFormerRecipe

    config, args = ctx.config, ctx.training_args
    task, setting, task_title = _task_of(ctx)
    has_tokenizer = (ctx.folder / "tokenizer.json").is_file()
    # Pipeline tag: a folder with a tokenizer is a text classifier ("text-classification" pipeline and
    # widget work on it). LRA Image takes 1024 grayscale pixel ids, not text and not images:
    # "image-classification" would promise an image processor the folder does not have, and leaving the
    # tag out lets the Hub infer "text-classification" from the architecture name, which fails without a
    # tokenizer. "other" is the Hub's tag for exactly this (no widget, no hosted inference). The
    # model-index still says what was measured: image classification on CIFAR-10.
    pipeline_tag = "text-classification" if has_tokenizer else NO_PIPELINE
    task_type = "text-classification" if has_tokenizer else "image-classification"
    grid = (config["mimo_m"], config["mimo_n"])
    trained = [grid_text(g) for g in (config.get("trained_grids") or [grid])]
    rows = _grid_rows(ctx, trained)
    rows_at = {row["grid"]: row for row in rows}
    labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    examples = {"listops": LISTOPS_EXAMPLES, "text": TEXT_EXAMPLES}.get(task, [])
    story = _training_story(ctx)
    # A zoo folder comes from the CPU queue (scripts/train_zoo.py, one run at a time, full --max-steps
    # schedules): its card names the queue command that reproduces it.
    zoo_folder = in_zoo(ctx)
    queue_command = f"python scripts/train_zoo.py --runs-dir ../runs/zoo --only {ctx.folder.name}" if zoo_folder else None
    baseline = baseline_row(ctx)
    full_row = rows_at.get(grid_text(grid))
    max_train = (args or {}).get("max_train_samples")
    variables = dict(
        title=ctx.push.repo_name, variant=VARIANTS[config["attention_type"]], attention_type=config["attention_type"],
        is_baseline=config["attention_type"] in ("performer", "softmax"), grid=grid_text(grid), mimo_m=grid[0],
        mimo_n=grid[1], group_size=grid[0] * grid[1], trained_grids=trained,
        grid_tuples=[tuple(int(v) for v in row["grid"].split("x")) for row in rows], rows=rows,
        full_row=full_row, single_row=rows_at.get("1x1"), baseline=baseline, task=task, in_zoo=zoo_folder,
        # e.g. the 2x2 grid of a 4x4 model's MIMO warm-up: a trained operating point between 1x1 and the full grid
        warmup_rows=[rows_at[g] for g in trained if g not in (grid_text(grid), "1x1") and g in rows_at],
        queue_command=queue_command, closest_faster=_closest_faster_row(ctx),
        below_baseline=bool(baseline and full_row) and ctx.results["results"] and
        next(r["accuracy"] for r in ctx.results["results"] if r["grid"] == grid_text(grid)) < ctx.results["baseline"]["accuracy"],
        train_subset=f" (at most the first {max_train:,} of the rest trained on, `--max-train-samples`)" if max_train else "",
        held_out=(args or {}).get("validation_size") or DEFAULT_VALIDATION_SIZES.get(task),
        task_title=task_title, recipe_title=LRA_TITLES.get(task, "ListOps"), recipe_steps=LRA_RECIPES[task]["max_steps"], listops=LISTOPS_PRESETS.get(setting),
        listops_preset=setting, num_labels=len(labels), labels=labels, chance=percent(1 / len(labels)),
        has_tokenizer=has_tokenizer, example=examples[0][0] if examples else None, config=config, args=args,
        train_command=MIMOFormerRecipe.from_record(args).command() if args else None, story=story,
        **_measurements(ctx, rows),
    )
    dataset_name = f"{task_title} ({ctx.results['dataset']})" if task in LRA_TITLES else task_title
    return CardParts(
        pipeline_tag=pipeline_tag,
        eval_results=operating_point_results(ctx, task_type, f"{task_title} classification", dataset_name),
        tags=["mimoformer", "favor-plus", "long-range-arena"],
        widget=[{"text": text, "example_title": title} for text, title in examples],
        variables=variables,
    )


ARCHITECTURE = Architecture(card_parts=mimoformer_card_parts)
