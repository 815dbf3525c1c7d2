"""The evaluation pipeline for MIMOFormer sequence classifiers on their LRA task (scripts/evaluate_mimoformer.py).

Operating points are grids MxN; data is the model's LRA task (named by its training_args.json unless
--task says otherwise); the baseline is e.g. the Performer of the same size. The results also hold
the accuracy on the first --check-subset examples (the zoo's re-evaluation tests recompute it), and
--throughput-only times the grids on this machine and merges sequences/s into an existing results
file, keeping its accuracies (accuracy measured on a GPU, throughput on a CPU).
"""

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from mimo_hf.evaluation.pipeline import Evaluation, EvaluationSettings, display
from mimo_hf.settings import grid_flag, grid_text, option


@dataclass
class MIMOFormerEvaluation(EvaluationSettings):
    """The flags of scripts/evaluate_mimoformer.py."""

    script = "scripts/evaluate_mimoformer.py"

    model: str = option(None, "Hub-ready folder, checkpoint folder or Hub id", type=str, required=True)
    baseline: str = option(None, "folder or Hub id of a baseline timed and scored beside it (e.g. the Performer)",
                           type=str)
    task: str = option(None, "LRA task (default: read from the folder's training_args.json)", type=str)
    data_dir: str = option(None, "the task's data folder (default: as in training_args.json)", type=str)
    grids: list = option(None, "grids MxN to evaluate (default: 1x1, the trained grids and the full grid)",
                         type=grid_flag, nargs="*")
    max_eval_samples: int = option(None, "evaluate only the first N examples of the split", type=int, minimum=1)
    check_subset: int = option(256, "also record accuracy on the first N examples, for the re-evaluation test "
                                    "(0: none; the rows' subset_accuracy is then null)")
    throughput_only: bool = option(False, "only time the grids (and baseline) on this machine and merge sequences/s "
                                          "into the existing results file, keeping its accuracies (e.g. accuracy "
                                          "measured on a GPU, throughput on a CPU)")
    batch_size: int = option(256, "sequences per evaluation batch", minimum=1)
    throughput_batch_size: int = option(64, "sequences per timed call", minimum=1)
    repeats: int = option(7, "timed interleaved rounds; the median is reported", minimum=1)


def results_dataset(task, data_dir):
    """The results' `dataset` field, which model cards and push configs declare: the Hub id of the image and
    text data, or for ListOps, generated here, a name saying how: "listops (generated with
    scripts/generate_listops.py --preset cpu)" when the data folder's generation.json matches a preset."""
    from mimo_hf.data.listops import preset_of
    from mimo_hf.data.lra import HUB_IDS

    if task != "listops":
        return HUB_IDS.get(task, task)
    generation_file = Path(data_dir) / "generation.json" if data_dir else None
    generation = json.loads(generation_file.read_text()) if generation_file and generation_file.is_file() else {}
    name = preset_of(generation)
    if name is None:
        return "listops (generated with scripts/generate_listops.py)"
    seed = generation.get("seed", 0)
    return f"listops (generated with scripts/generate_listops.py --preset {name}" + (f" --seed {seed})" if seed else ")")


def default_grids(config):
    return sorted({(1, 1), (config.mimo_m, config.mimo_n), *(tuple(g) for g in (config.trained_grids or []))})


class MIMOFormerPipeline(Evaluation):
    unit = "sequences_per_s"
    digits = 2
    point_label = "grid"
    baseline_point = "1x1"

    def __init__(self, settings):
        super().__init__(settings)
        path = Path(settings.model) / "training_args.json"
        self.run_args = json.loads(path.read_text()) if path.is_file() else {}
        self.task = settings.task or self.run_args.get("task")
        if self.task is None:
            sys.exit("error: --task is required (the model folder has no training_args.json naming it)")
        self.data_dir = settings.data_dir or self.run_args.get("data_dir")
        self.previous = None
        if settings.throughput_only:
            results = Path(settings.output_dir) / settings.results_file
            if not results.is_file():
                sys.exit(f"error: --throughput-only merges sequences/s into the accuracy results of an earlier run, and "
                         f"{results} does not exist: evaluate without --throughput-only first (same --output-dir "
                         f"and --results-file)")
            self.previous = json.loads(results.read_text())

    def load_model(self, name, revision=None):
        from mimo_hf.evaluation.accuracy import load_classifier

        return load_classifier(name, revision=revision, auto_class="AutoModelForSequenceClassification")

    def load_data(self, model):
        from mimo_hf.data.batches import TensorDict
        from mimo_hf.data.lra import load_lra_task

        # max_examples: only the first N examples are decoded (the same rows a full load would start with).
        self.data = load_lra_task(self.task, self.settings.split, data_dir=self.data_dir,
                                  max_length=model.config.max_position_embeddings, seed=self.run_args.get("seed", 0),
                                  max_examples=self.settings.max_eval_samples or None)
        return TensorDict(self.data.tensors())

    def points(self, config):
        grids = [tuple(g) for g in self.settings.grids] if self.settings.grids else default_grids(config)
        bad = [g for g in grids if g not in config.operating_points]
        if bad:
            sys.exit(f"error: grids {bad} lie outside the model's {config.mimo_m}x{config.mimo_n} grid")
        return grids

    def point_name(self, point):
        return grid_text(point)

    def row(self, point):
        return {"grid": grid_text(point), "inputs_per_group": point[0] * point[1]}

    def point_cell(self, row):
        return row["grid"]

    def score_all(self, model, dataset, points):
        """Accuracies of the grids (on the split and its first --check-subset examples) and of the baseline;
        with --throughput-only those of the existing results file."""
        if self.previous is None:
            return super().score_all(model, dataset, points)
        self.subset = self.subset_size(dataset)
        scores = {g: next(r for r in self.previous["results"] if r["grid"] == grid_text(g)) for g in points}
        self.subset_scores = {g: {"accuracy": scores[g]["subset_accuracy"]} for g in points}
        base = None
        if self.settings.has_baseline:
            base = (*self.load_model(self.settings.baseline), self.previous["baseline"])
        return scores, base

    def baseline_record(self, model, score):
        return {"model": display(self.settings.baseline), "attention_type": model.config.attention_type,
                "accuracy": score["accuracy"], "count": score["count"]}

    def hardware(self):
        import torch

        hardware = super().hardware()
        if torch.cuda.is_available() and self.accelerator.device.type == "cuda":
            hardware["gpu"] = torch.cuda.get_device_name(self.accelerator.device)
        return hardware

    def header(self, model, dataset):
        s, config = self.settings, model.config
        return {
            "model": display(s.model), "revision": s.revision, "architecture": "mimoformer",
            "attention_type": config.attention_type, "grid": f"{config.mimo_m}x{config.mimo_n}", "task": self.task,
            "dataset": results_dataset(self.task, self.data_dir), "data_dir": self.data_dir, "split": s.split,
            "num_examples": len(dataset), "sequence_length": int(self.data.input_ids.shape[1]),
            "subset_size": self.subset,
        }

    def report(self, model, dataset, rows, baseline):
        s, hardware, device = self.settings, self.hardware(), str(self.accelerator.device)
        if self.previous is not None:  # accuracies (and where they were measured) stay; throughput is this run's
            report = self.previous
            report.setdefault("dataset", results_dataset(self.task, self.data_dir))
            report.update(results=rows, baseline=baseline, throughput_hardware=hardware, throughput_device=device,
                          throughput_batch_size=s.throughput_batch_size, throughput_command=s.command)
            return report
        report = {**self.header(model, dataset), "results": rows, "baseline": baseline, "hardware": hardware,
                  "device": device, "throughput_batch_size": None if s.no_throughput else s.throughput_batch_size,
                  "command": s.command}
        if not s.no_throughput:
            report.update(throughput_hardware=hardware, throughput_device=device, throughput_command=s.command)
        return report

    def print_table(self, report, rows, baseline):
        timed_on = report.get("throughput_device")
        print(f"\n{self.task} ({self.settings.split}, {report['num_examples']} sequences of {report['sequence_length']} "
              f"tokens); accuracy on {report['device']}" + (f", throughput on {timed_on}" if timed_on else ""))
        super().print_table(report, rows, baseline)

    def plot(self, report, rows):
        from mimo_hf.evaluation.plots import plot_operating_points

        baseline = report["baseline"]
        points = [{"label": r["grid"], "accuracy": r["accuracy"], "images_per_s": r[self.unit]} for r in rows]
        base = None if baseline is None else {"name": f"{baseline['attention_type']} baseline",
                                              "accuracy": baseline["accuracy"], "images_per_s": baseline[self.unit]}
        attention = report.get("attention_type")
        plot_operating_points(points, os.path.join(self.settings.output_dir, "accuracy_throughput.png"),
                              title=f"{Path(self.settings.model).name} on LRA {self.task}", baseline=base,
                              unit="sequences/s", series=f"MIMOFormer ({attention}) grids")


def evaluate_mimoformer(settings):
    """scripts/evaluate_mimoformer.py: the results JSON of a `MIMOFormerEvaluation` (None on non-main processes)."""
    return MIMOFormerPipeline(settings).run()
