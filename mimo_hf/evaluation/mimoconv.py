"""The evaluation pipeline for MIMOConv image classifiers (scripts/evaluate_mimoconv.py).

Operating points are the k that divide the capacity N; data is an image dataset (by default the 1,000
CIFAR-10 test images shipped with the package); the baseline is the plain Wide ResNet. With --onnx,
the exported graphs of `mimo_hf.deploy` are scored and timed beside the eager models too.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

from mimo_hf.evaluation.pipeline import ROOT, Evaluation, EvaluationSettings, display
from mimo_hf.settings import option

JPEG_NOTE = "CIFAR-10 here is a JPEG (quality 75) copy; accuracies are not comparable with published CIFAR-10 results"


@dataclass
class MIMOConvEvaluation(EvaluationSettings):
    """The flags of scripts/evaluate_mimoconv.py."""

    script = "scripts/evaluate_mimoconv.py"

    model: str = option(str(ROOT / "zoo" / "mimoconv16-2-n4-dynamic"), "Hub-ready folder, checkpoint folder or Hub id "
                                                                        "(default: the zoo's dynamic model)")
    baseline: str = option(str(ROOT / "zoo" / "wrn16-2-baseline"), "folder or Hub id of the plain Wide ResNet timed and "
                                                                   "scored beside it (default: the zoo's); 'none' to skip")
    operating_points: list = option(None, "operating points k to evaluate (default: every k that divides the capacity N)",
                                    type=int, nargs="*")
    dataset: str = option(None, "Hub dataset id (uoft-cs/cifar10, uoft-cs/cifar100, ylecun/mnist)", type=str)
    data_dir: str = option(None, "local folder of parquet shards in the Hub schema (e.g. ../shared/data/cifar10)",
                           type=str)
    onnx: str = option(None, "exported folder of --model (scripts/export_onnx.py) to score and time too", type=str)
    baseline_onnx: str = option(None, "exported folder of --baseline, scored and timed beside it", type=str)
    runtimes: list = option(None, "runtimes for --onnx", nargs="+", choices=["onnxruntime", "openvino"],
                            default_factory=lambda: ["onnxruntime", "openvino"])
    precisions: list = option(None, "precisions for --onnx (default: every one the folder holds)", nargs="+",
                              choices=["fp32", "int8"])
    check_subset: int = option(2000, "also record accuracy on the first N images (the zoo's re-evaluation test "
                                     "recomputes it instead of the whole split); 0: none", type=int)

    @property
    def uses_sample(self):
        return self.data_dir is None and self.dataset is None


class MIMOConvPipeline(Evaluation):
    point_label = "k"
    baseline_point = 1

    def load_model(self, name, revision=None):
        from mimo_hf.evaluation.accuracy import load_classifier

        return load_classifier(name, revision=revision)

    def load_data(self, model):
        from mimo_hf.data.batches import TensorDict
        from mimo_hf.data.images import CIFAR10_SAMPLE_DIR, load_image_dataset

        s = self.settings
        data_dir = str(CIFAR10_SAMPLE_DIR) if s.uses_sample else s.data_dir
        self.data = load_image_dataset(s.dataset or "uoft-cs/cifar10", data_dir=data_dir, split=s.split)
        names = [model.config.id2label[i] for i in range(model.config.num_labels)]
        if names != list(self.data.label_names):
            sys.exit(f"error: the model's labels {names} differ from the dataset's {list(self.data.label_names)}")
        return TensorDict(self.data.tensors())

    def points(self, config):
        points = self.settings.operating_points or config.operating_points
        bad = [k for k in points if k not in config.operating_points]
        if bad:
            sys.exit(f"error: operating points {bad} do not divide the capacity N={config.num_superpositions}; "
                     f"allowed: {config.operating_points}")
        return points

    def point_name(self, point):
        return f"k{point}"

    def row(self, point):
        return {"operating_point": point}

    def point_cell(self, row):
        return row["operating_point"]

    def score_all(self, model, dataset, points):
        scores, base = super().score_all(model, dataset, points)
        self.scores, self.base_score = scores, None if base is None else {1: base[2]}  # what --onnx compares against
        return scores, base

    def baseline_record(self, model, score):
        return {"model": display(self.settings.baseline), "name": "Wide ResNet baseline", "accuracy": score["accuracy"],
                "count": score["count"]}

    def run(self):
        if self.settings.baseline_onnx and not self.settings.has_baseline:
            sys.exit("error: --baseline-onnx needs --baseline")
        self.deployed = None
        return super().run()

    def measure(self, model, base, dataset, points):
        if not self.settings.onnx:
            return super().measure(model, base, dataset, points)
        return self.deploy(model, base, points)

    def deploy(self, model, base, points):
        """Score (and, unless --no-throughput, time) the exported graphs beside the eager models; returns the
        eager models' images/s (None with --no-throughput)."""
        from mimo_hf.deploy.evaluation import evaluate_deployed
        from mimo_hf.evaluation.metrics import load_metric

        s, inputs = self.settings, self.inputs
        batch = None if s.no_throughput else inputs({"pixel_values": self.data.images[: s.throughput_batch_size]})
        baseline = None if base is None else {"model": base[0], "scores": self.base_score, "onnx_dir": s.baseline_onnx,
                                              "mean": base[1].mean, "std": base[1].std}
        self.deployed, eager_ips = evaluate_deployed(
            model, s.onnx, points, self.data.images, self.data.labels, s.batch_size, inputs.mean, inputs.std,
            load_metric("accuracy"), self.scores, baseline, s.runtimes, s.precisions, s.threads,
            None if batch is None else batch["pixel_values"], s.warmup, s.repeats)
        if eager_ips is None:
            return None
        return {**{f"k{k}": v for (name, k), v in eager_ips.items() if name == "model"},
                **{"baseline": v for (name, _), v in eager_ips.items() if name == "baseline"}}

    def header(self, model, dataset):
        s = self.settings
        return {
            "model": display(s.model),
            "revision": s.revision,
            "capacity": model.config.num_superpositions,
            "dataset": "shipped CIFAR-10 test sample (first 1,000 test images)" if s.uses_sample
            else (s.dataset or "uoft-cs/cifar10"),
            "data_dir": None if s.uses_sample else s.data_dir,
            "split": s.split,
            "num_examples": len(dataset),
            "subset_size": self.subset,
            # Only where the images evaluated are JPEG files (the project's copy, the shipped sample),
            # not for the Hub's PNG CIFAR-10.
            "data_note": JPEG_NOTE if self.data.dataset == "cifar10" and "JPEG" in self.data.formats else None,
        }

    def report(self, model, dataset, rows, baseline):
        report = super().report(model, dataset, rows, baseline)
        if self.deployed is not None:
            report["deploy"] = self.deployed
        return report

    def print_table(self, report, rows, baseline):
        print(f"\n{report['dataset']} ({report['split']}, {report['num_examples']} images); "
              f"{report['hardware']['cpu']}, {report['hardware']['threads']} threads")
        super().print_table(report, rows, baseline)
        if self.deployed is not None:
            print_deploy(self.deployed)
        s = self.settings
        plotted = not (s.no_throughput or self.deployed)
        print(f"wrote {s.output_dir}/{s.results_file}" + (" and accuracy_throughput.png" if plotted else ""))

    def plot(self, report, rows):
        import os

        from mimo_hf.evaluation.plots import plot_operating_points

        if self.deployed is not None:
            return  # the deploy table is the report of an --onnx run
        plot_operating_points(rows, os.path.join(self.settings.output_dir, "accuracy_throughput.png"),
                              title=f"{Path(self.settings.model).name} on {report['dataset']}",
                              baseline=report["baseline"])


def print_deploy(deploy):
    print("| model | runtime | precision | k | accuracy | images/s | vs eager fp32 baseline | vs baseline, same runtime |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("model", "baseline"):
        for row in (deploy[name] or {}).get("results", []):
            print(f"| {name} | {row['runtime']} | {row['precision']} | {row['operating_point']} | "
                  f"{100 * row['accuracy']:.2f}% | {row.get('images_per_s', '-')} | "
                  f"{row.get('ratio_to_eager_fp32_baseline') or '-'} | {row.get('ratio_to_baseline_same_runtime') or '-'} |")


def evaluate_mimoconv(settings):
    """scripts/evaluate_mimoconv.py: the results JSON of a `MIMOConvEvaluation` (None on non-main processes)."""
    return MIMOConvPipeline(settings).run()
