"""One evaluation pipeline for both architectures: accuracy at every operating point, the baseline beside it,
throughput timed side by side, the results JSON (the single source of every number on a card), the table
and the accuracy/throughput plot.

`Evaluation.run` is the pipeline; an architecture (`evaluation.mimoconv`, `evaluation.mimoformer`)
says how its model and data load, what its operating points are called and what its results JSON
holds beyond the shared fields. The settings are a dataclass per script (see `mimo_hf.settings`).
"""

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from mimo_hf import settings as flags
from mimo_hf.data import DataError
from mimo_hf.hub.references import check_model_reference, load_failure_message
from mimo_hf.settings import option

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class EvaluationSettings:
    """The flags every evaluation script shares."""

    script = ""  # the script, for the results' "command"

    model: str = option(None, "Hub-ready folder, checkpoint folder or Hub id", type=str)
    revision: str = option(None, "Hub revision (commit, branch or tag) for --model", type=str)
    baseline: str = option(None, "folder or Hub id of a baseline timed and scored beside it; 'none' to skip", type=str)
    split: str = option("test", "split to evaluate")
    batch_size: int = option(500, "inputs per evaluation batch", minimum=1)
    throughput_batch_size: int = option(256, "inputs per timed call", minimum=1)
    repeats: int = option(10, "timed interleaved rounds; the median is reported", minimum=1)
    warmup: int = option(2, "untimed calls per model before timing")
    threads: int = option(None, "torch intra-op threads (default: torch's choice)", type=int, minimum=1)
    no_throughput: bool = option(False, "skip the throughput measurement")
    output_dir: str = option("outputs/evaluation", "where the results and the plot go")
    results_file: str = option("results.json", "name of the results JSON in --output-dir")
    # check_subset (how many leading inputs also get a subset_accuracy) is each script's own flag: the
    # default is sized to its zoo re-evaluation test.
    argv: list = None  # the command line the settings came from (not a flag)

    @classmethod
    def from_flags(cls, argv=None, description=None):
        argv = sys.argv[1:] if argv is None else list(argv)
        namespace = flags.build_parser(cls, description or cls.__doc__).parse_args(argv)
        values = {name: getattr(namespace, name) for name in vars(namespace)}
        return cls(**values, argv=argv)

    @property
    def command(self):
        return "python " + " ".join([self.script, *self.argv])

    @property
    def has_baseline(self):
        return bool(self.baseline) and self.baseline.lower() != "none"


def display(name):
    """Local folders relative to the working directory (no machine-specific paths in results)."""
    return os.path.relpath(name) if os.path.isdir(name) else name


class Evaluation:
    """The pipeline; subclasses fill in the architecture (see the module docstring)."""

    unit = "images_per_s"  # the throughput field of a results row
    digits = 1  # its rounding
    inputs_name = "images"

    def __init__(self, settings):
        self.settings = settings
        # Both references are checked before anything is read or scored: a mistyped --baseline would otherwise
        # fail only after the whole split has been evaluated.
        for flag, name in (("--model", settings.model), ("--baseline", settings.baseline if settings.has_baseline else None)):
            if name is not None:
                try:
                    check_model_reference(name, flag)
                except FileNotFoundError as error:
                    sys.exit(f"error: {error}")

    # --- what an architecture provides ------------------------------------------------------------
    def load_data(self, model):
        """The split as a `data.batches.TensorDict` (model inputs + "labels")."""
        raise NotImplementedError

    def load_model(self, name, revision=None):
        """(model in eval mode, input map or None) of a folder or Hub id."""
        raise NotImplementedError

    def points(self, config):
        """The operating points to evaluate (checked against the model; exits on a bad request)."""
        raise NotImplementedError

    def row(self, point):
        """The identifying fields of a results row."""
        raise NotImplementedError

    def baseline_record(self, model, score):
        raise NotImplementedError

    def header(self, model, dataset):
        """The results JSON's fields before "results"."""
        raise NotImplementedError

    def plot(self, report, rows):
        raise NotImplementedError

    # --- the pipeline -----------------------------------------------------------------------------
    def load_checked(self, name, revision=None, flag="--model"):
        """load_model, with a one-line error naming the flag when the folder or Hub id does not load."""
        try:
            return self.load_model(name, revision)
        except OSError as error:  # transformers' missing files, unreachable or unknown Hub repos
            sys.exit(f"error: {load_failure_message(name, error, flag)}")

    def run(self):
        """Score, time, write the results JSON and the plot, print the table; returns the report."""
        import torch
        from accelerate import Accelerator

        s = self.settings
        if s.threads is not None:
            torch.set_num_threads(s.threads)
        self.accelerator = Accelerator()
        model, self.inputs = self.load_checked(s.model, s.revision)
        try:
            dataset = self.load_data(model)
        except (FileNotFoundError, DataError) as error:  # a missing folder, a split or column that is not there
            sys.exit(f"error: {error}")
        points = self.points(model.config)
        scores, base = self.score_all(model, dataset, points)
        ips = self.measure(model, base, dataset, points)
        rows = self.rows(points, scores, ips)
        baseline = None if base is None else self.baseline_record(base[0], base[2])
        if baseline is not None and ips is not None:
            baseline[self.unit] = round(ips["baseline"], self.digits)
            for row in rows:
                row["speedup_vs_baseline"] = round(row[self.unit] / baseline[self.unit], 3)
        if not self.accelerator.is_main_process:
            return None
        report = self.report(model, dataset, rows, baseline)
        self.write(report)
        self.print_table(report, rows, baseline)
        if ips is not None:
            self.plot(report, rows)
        return report

    def score(self, model, dataset, points, inputs, progress=False):
        """{point: {"accuracy", "count"}} of a model over the split."""
        from torch.utils.data import DataLoader

        from mimo_hf.evaluation.accuracy import accuracy_at_points
        from mimo_hf.evaluation.metrics import load_metric

        loader = self.accelerator.prepare(DataLoader(dataset, batch_size=self.settings.batch_size))
        return accuracy_at_points(self.accelerator.prepare(model), loader, points, self.accelerator,
                                  load_metric("accuracy"), inputs, progress)

    def subset_size(self, dataset):
        """How many leading inputs get a subset_accuracy too (--check-subset, capped at the split's size)."""
        if self.settings.check_subset < 0:
            sys.exit(f"error: --check-subset must be >= 0 (0: no subset accuracy), got {self.settings.check_subset}")
        return min(self.settings.check_subset, len(dataset))

    def score_subset(self, model, dataset, points):
        """{point: {"accuracy"}} on the first self.subset inputs; an empty subset has no accuracy (the metric
        refuses empty input), recorded as null."""
        if not self.subset:
            return {point: {"accuracy": None} for point in points}
        return self.score(model, dataset.head(self.subset), points, self.inputs)

    def score_all(self, model, dataset, points):
        """The model's scores, and (baseline model, its input map, its score at the default point) or None.
        Also sets self.subset and self.subset_scores (the first --check-subset inputs)."""
        self.subset = self.subset_size(dataset)
        scores = self.score(model, dataset, points, self.inputs, progress=True)
        self.subset_scores = self.score_subset(model, dataset, points)
        if not self.settings.has_baseline:
            return scores, None
        base_model, base_inputs = self.load_checked(self.settings.baseline, flag="--baseline")
        return scores, (base_model, base_inputs, self.score(base_model, dataset, [None], base_inputs)[None])

    def measure(self, model, base, dataset, points):
        """{name: inputs per second} (None with --no-throughput)."""
        return None if self.settings.no_throughput else self.time(model, base, dataset, points)

    def time(self, model, base, dataset, points):
        """{name: inputs per second}, every point and the baseline timed side by side, same batch."""
        from tqdm.auto import tqdm

        from mimo_hf.evaluation.throughput import other_cpu_share, time_interleaved

        batch = self.timing_batch(dataset, self.inputs)
        entries = [(self.point_name(p), model, p) for p in points]
        if base is not None:
            entries.append(("baseline", base[0], None))
        with tqdm(total=self.settings.repeats, desc="timing", disable=not self.accelerator.is_local_main_process) as bar:
            timings = time_interleaved(entries, batch, warmup=self.settings.warmup, repeats=self.settings.repeats,
                                       progress=bar)
        size = next(iter(batch.values())).shape[0]
        self.other_cpu_share = other_cpu_share(timings)
        return {name: size / t["median_s"] for name, t in timings.items()}

    def timing_batch(self, dataset, inputs):
        """The first --throughput-batch-size inputs as model inputs on the accelerator's device."""
        from mimo_hf.data.batches import split_labels

        features, _ = split_labels(dataset.head(self.settings.throughput_batch_size).tensors)
        features = inputs(features) if inputs else features
        return {name: tensor.to(self.accelerator.device) for name, tensor in features.items()}

    def point_name(self, point):
        return str(point)

    def rows(self, points, scores, ips):
        rows = []
        for point in points:
            row = {**self.row(point), "accuracy": scores[point]["accuracy"], "count": scores[point]["count"],
                   "subset_accuracy": self.subset_scores[point]["accuracy"]}
            if ips is not None:
                row[self.unit] = round(ips[self.point_name(point)], self.digits)
            rows.append(row)
        return rows

    def hardware(self):
        from mimo_hf.evaluation.throughput import machine_description

        hardware = machine_description()
        if getattr(self, "other_cpu_share", None) is not None:
            hardware["other_cpu_share_while_timing"] = self.other_cpu_share  # see throughput.OtherLoad
        return hardware

    def report(self, model, dataset, rows, baseline):
        s = self.settings
        return {**self.header(model, dataset), "results": rows, "baseline": baseline, "hardware": self.hardware(),
                "throughput_batch_size": None if s.no_throughput else s.throughput_batch_size, "command": s.command}

    def write(self, report):
        s = self.settings
        os.makedirs(s.output_dir, exist_ok=True)
        with open(os.path.join(s.output_dir, s.results_file), "w") as f:
            json.dump(report, f, indent=2)

    def print_table(self, report, rows, baseline):
        unit = self.unit.replace("_per_s", "/s")
        print(f"| model | {self.point_label} | accuracy | {unit} | vs baseline |")
        print("|---|---|---|---|---|")
        for row in rows:
            print(f"| {report['model']} | {self.point_cell(row)} | {100 * row['accuracy']:.2f}% | "
                  f"{row.get(self.unit, '-')} | {row.get('speedup_vs_baseline', '-')} |")
        if baseline is not None:
            print(f"| {baseline['model']} | {self.baseline_point} | {100 * baseline['accuracy']:.2f}% | "
                  f"{baseline.get(self.unit, '-')} | 1.0 |")
