"""Training recipes: every setting of a run, typed, built once from the flags and recorded with the model.

`MIMOConvRecipe` (spec section 2, the paper's CIFAR recipe) and `MIMOFormerRecipe` (spec section 3,
the authors' LRA recipe) are dataclasses whose fields are the training scripts' flags (see
`mimo_hf.settings`). A run's recipe is written to `training_args.json` beside the model; model cards
read it back with `from_record` and quote `command()`, the exact command that reproduces it.
"""

import argparse
import dataclasses
import os
from dataclasses import dataclass

from mimo_hf import settings
from mimo_hf.settings import option, parse_grid
from mimo_hf.training.fast_training import PRESETS

# Per-task recipe defaults of the authors' LRA configs (batch size, optimizer steps, LR warm-up steps).
LRA_RECIPES = {
    "listops": {"batch_size": 64, "max_steps": 20000, "warmup_steps": 1000},
    "text": {"batch_size": 32, "max_steps": 40000, "warmup_steps": 8000},
    "retrieval": {"batch_size": 32, "max_steps": 60000, "warmup_steps": 8000},
    "image": {"batch_size": 256, "max_steps": 70000, "warmup_steps": 175},
    "pathfinder": {"batch_size": 256, "max_steps": 124800, "warmup_steps": 312},
}


@dataclass
class RunOptions:
    """What every training run shares: precision, accumulation, seed, and its folders."""

    unit = "epoch"  # what checkpoints are taken at ("epoch" or "step")
    script = ""  # the training script, for `command()`

    gradient_accumulation_steps: int = option(1, "", "optimisation", minimum=1)
    mixed_precision: str = option(None, "default: accelerate's config", "optimisation", choices=["no", "fp16", "bf16"])
    seed: int = option(0, "", "optimisation")
    output_dir: str = option(None, "run folder: logs and the final Hub-ready folder <output-dir>/hub", "run",
                             required=True)
    checkpoint_dir: str = option(None, "{unit} checkpoints (default <output-dir>/checkpoints); keep outside git",
                                 "run")
    keep_checkpoints: int = option(2, "newest {unit} checkpoints to keep", "run")
    resume: str = option(None, "'latest' or a checkpoint folder: continue that run exactly (flags that change the "
                               "recipe are refused; --num-threads, --keep-checkpoints, --stop-after-*, --max-minutes and "
                               "other run flags may differ)", "run")
    overwrite_output_dir: bool = option(False, "start over in an --output-dir that holds a previous run: delete its "
                                               "checkpoints, Hub folder and logs first (without it such a folder is refused)",
                                        "run")
    num_threads: int = option(None, "torch intra-op threads per process (CPU)", "run", type=int, minimum=1)
    report_process_weights: bool = option(False, "write a sha256 of each process's final weights (DDP checks)", "run")

    @classmethod
    def parser(cls):
        return settings.build_parser(cls, cls.description)

    @classmethod
    def from_flags(cls, argv=None):
        """Parse the command line (or `argv`) into a resolved recipe. Settings the flags leave open that
        the data or a checkpoint fix (`adopt`) are filled in; an explicit flag that contradicts them is an error."""
        parser = cls.parser()
        recipe = settings.from_namespace(cls, parser.parse_args(argv))
        return recipe.adopt(settings.explicit_flags(parser, argv)).resolved()

    @classmethod
    def from_record(cls, record, source="training_args.json"):
        """The recipe a `training_args.json` records, resolved (a record that predates a setting gets
        what the run used: its default or preset value)."""
        return settings.from_record(cls, record, source).resolved()

    @classmethod
    def help_values(cls):
        return {"unit": cls.unit}

    def resolved(self):
        """The recipe with derived defaults filled in and its settings checked; subclasses extend it."""
        return self

    def adopt(self, explicit):
        """The recipe with what the data and a --model-name-or-path checkpoint fix taken from them (the
        architecture, the operating points, a data folder's schema); `explicit`: the flags the user gave."""
        from mimo_hf.training.finetune import adopt_checkpoint

        return adopt_checkpoint(self, explicit)

    def record(self):
        """What `training_args.json` holds: every field, local paths relative to the working directory."""
        return settings.record(self)

    def command(self):
        """The command line that reproduces this recipe."""
        return settings.command_line(type(self), self.record(), self.script, self.implied())

    def implied(self):
        """Values the resolved recipe gets without a flag (left out of `command()`)."""
        return {}

    @property
    def checkpoint_folder(self):
        """Where the run's checkpoints go: --checkpoint-dir, else <output-dir>/checkpoints."""
        return self.checkpoint_dir or os.path.join(self.output_dir, "checkpoints")

    @property
    def hub_folder(self):
        return os.path.join(self.output_dir, "hub")

    def scalars(self):
        """The scalar settings (the TensorBoard run config)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if isinstance(v, (int, float, str, bool))}


@dataclass
class MIMOConvRecipe(RunOptions):
    """The MIMOConv recipe (or its Wide ResNet baseline's): data, model, optimisation and run settings."""

    description = ("Train MIMOConv (or its Wide ResNet baseline) with the paper's recipe on accelerate. "
                   "Runs unchanged under `accelerate launch` on CPUs, one GPU or many.")
    script = "scripts/train_mimoconv.py"
    group_titles = {"optimisation": "optimisation (defaults from --preset; an explicit flag wins)"}

    dataset: str = option("uoft-cs/cifar10", "Hub dataset id: uoft-cs/cifar10, uoft-cs/cifar100, ylecun/mnist, or "
                                             "with --model-name-or-path any image classification dataset (see "
                                             "--image-column, --label-column)", "data")
    data_dir: str = option(None, "local folder of parquet shards in the Hub schema (e.g. ../shared/data/cifar10); "
                                 "its columns pick --dataset when that is not given", "data", type=str)
    train_dir: str = option(None, "fine-tuning: image folder with one sub-folder per class (the names are the "
                                  "labels)", "data", type=str)
    validation_dir: str = option(None, "fine-tuning: validation image folder with the same class sub-folders "
                                       "(without it: held out of the training data)", "data", type=str)
    train_file: str = option(None, "fine-tuning: parquet, CSV or JSON(L) file of images (bytes or paths) and labels",
                             "data", type=str)
    validation_file: str = option(None, "fine-tuning: validation file like --train-file (else held out of the "
                                        "training data)", "data", type=str)
    image_column: str = option(None, "image column of --dataset/--train-file (default: the known dataset's, else "
                                     "'image')", "data", type=str)
    label_column: str = option(None, "label column (ClassLabel, strings or integers; default: the known dataset's, "
                                     "else 'label')", "data", type=str)
    in_memory_limit_mb: int = option(2048, "fine-tuning data whose decoded uint8 pixels (train + validation, at the "
                                           "checkpoint's image size) exceed this many MiB are decoded batch by batch "
                                           "through a datasets transform instead of up front (2048 MiB: about 700k "
                                           "RGB images of 32 x 32)", "data")
    validation_size: int = option(5000, "training images held out for validation (never tune on test; fine-tuning "
                                        "default: 10% of the training data, every class in proportion)", "data",
                                  type=int)
    max_train_samples: int = option(None, "use only the first N training images (smoke tests)", "data", type=int, minimum=1)
    max_eval_samples: int = option(None, "use only the first N validation images (smoke tests)", "data", type=int, minimum=1)
    model_name_or_path: str = option(None, "fine-tune this checkpoint (Hub-ready or checkpoint folder, or Hub id): "
                                           "weights, config, image processor; the model flags below are read from "
                                           "it (a contradicting flag is an error); new labels get a new classifier",
                                     "model", type=str)
    num_superpositions: int = option(4, "capacity N", "model", minimum=1)
    binding: str = option("hrr", "", "model", choices=["hrr", "mbat", "none"])
    depth: int = option(16, "Wide ResNet depth 6n+4", "model")
    width: int = option(4, "Wide ResNet width factor", "model")
    initial_width: float = option(4, "stem width factor (C = 16 * s)", "model", type=float)
    activation: str = option("prelu", "", "model", choices=["relu", "prelu", "srelu"])
    activation_init: float = option(None, "PReLU slope / SReLU offset init (default 0.5 / -1)", "model", type=float)
    skip_init: bool = option(False, "scale residual branches by a learned scalar initialised at 0", "model")
    frozen_keys: bool = option(False, "keep the binding keys fixed at their initialisation", "model")
    preset: str = option("paper", "'paper': the authors' recipe (one-cycle, mixup, wd 1e-5) for long GPU runs; 'fast': "
                                  "the short-schedule recipe of docs/mimoconv_recipe_study.md (label smoothing 0.2, "
                                  "Nesterov, triangular LR, weight EMA, BN momentum 0.4, alternating flips, wd 5e-4, "
                                  "no mixup)", "optimisation", choices=sorted(PRESETS))
    epochs: int = option(200, "epochs; each passes over the data N times (fairness rule)", "optimisation", minimum=1)
    batch_size: int = option(128, "bundles per step per process; a step sees batch_size * N images", "optimisation", minimum=1)
    eval_batch_size: int = option(512, "images per evaluation batch per process", "optimisation", minimum=1)
    lr_schedule: str = option(None, "onecycle: torch's OneCycleLR (cosine, cycling momentum); triangular: linear up, "
                                    "linear down to 0", "optimisation", choices=["onecycle", "triangular"])
    lr: float = option(None, "peak learning rate", "optimisation", type=float)
    pct_start: float = option(None, "fraction of steps spent warming up to the peak LR", "optimisation", type=float)
    momentum: float = option(None, "SGD momentum (one-cycle cycles it down to 0.85 at the peak)", "optimisation",
                             type=float)
    nesterov: bool = option(None, "Nesterov momentum", "optimisation", action=argparse.BooleanOptionalAction)
    weight_decay: float = option(None, "weight decay (not on PReLU/SReLU parameters)", "optimisation", type=float)
    mixup_alpha: float = option(None, "mixup Beta(alpha, alpha); 0 disables mixup", "optimisation", type=float)
    label_smoothing: float = option(None, "label smoothing of the (mixed) targets", "optimisation", type=float)
    ema_decay: float = option(None, "per-step decay of an exponential moving average of the weights; the average is "
                                    "validated and exported instead of the raw weights; 0 disables", "optimisation",
                              type=float)
    bn_momentum: float = option(None, "BatchNorm running-statistics momentum (PyTorch convention)", "optimisation",
                                type=float)
    alternating_flip: bool = option(None, "flip each image in every other pass over the data (else: random flips)",
                                    "optimisation", action=argparse.BooleanOptionalAction)
    horizontal_flip: bool = option(True, "flip training images horizontally (--no-horizontal-flip for data whose "
                                         "mirror image is another class or no class, e.g. digits)", "optimisation",
                                   action=argparse.BooleanOptionalAction)
    binding_coef: float = option(0.1, "coefficient of the binding regulariser", "optimisation")
    isometry_coef: float = option(1e-4, "coefficient of the isometry regulariser", "optimisation")
    grad_filter: float = option(10.0, "skip steps whose gradient norm exceeds this times last epoch's mean",
                                "optimisation")
    full_capacity_prob: float = option(1.0, "dynamic training: probability of k = N per step (paper: 0.8; "
                                            "fine-tuning default: 0.8 for a checkpoint trained at two operating "
                                            "points, else 1)", "optimisation")
    low_superpositions: int = option(1, "dynamic training: the lower operating point (fine-tuning default: the "
                                        "checkpoint's lower trained one)", "optimisation", minimum=1)
    eval_superpositions: list = option(None, "operating points validated each epoch (default: the trained ones)",
                                       "run", type=int, nargs="*")
    stop_after_epochs: int = option(None, "stop (after checkpointing) once this many epochs are done; resume later",
                                    "run", type=int)
    channels_last: bool = option(True, "train in channels-last memory format (faster convolutions on CPUs and GPUs; "
                                       "same results)", "run", action=argparse.BooleanOptionalAction)
    tune_cpu_allocator: bool = option(True, "on CPUs with glibc, keep freed memory for reuse instead of unmapping it "
                                            "(much faster steps)", "run", action=argparse.BooleanOptionalAction)
    output_dir: str = option(None, "run folder: logs, final Hub-ready folder under <output-dir>/hub", "run",
                             required=True)

    def resolved(self):
        """Every optimisation setting left unset taken from --preset; operating points checked."""
        unset = {key: value for key, value in PRESETS[self.preset].items() if getattr(self, key) is None}
        if unset:
            return dataclasses.replace(self, **unset).resolved()
        if self.num_superpositions % self.low_superpositions:
            raise ValueError(f"--low-superpositions {self.low_superpositions} must divide --num-superpositions "
                             f"{self.num_superpositions}")
        return self

    def implied(self):
        from mimo_hf.training.finetune import implied_by_checkpoint

        return {**PRESETS[self.preset], **implied_by_checkpoint(self)}

    @property
    def uses_own_data(self):
        """Data other than the built-in loaders': fine-tuning's image folders, files, any Hub dataset."""
        from mimo_hf.data.images import DATASETS

        return bool(self.model_name_or_path or self.train_dir or self.train_file or self.image_column
                    or self.label_column or self.dataset not in DATASETS)

    @property
    def trained_operating_points(self):
        """The k the steps run at: N, and the lower k of dynamic training."""
        points = {self.num_superpositions}
        if self.full_capacity_prob < 1.0:
            points.add(self.low_superpositions)
        return sorted(points)

    @property
    def eval_operating_points(self):
        return self.eval_superpositions or self.trained_operating_points


@dataclass
class MIMOFormerRecipe(RunOptions):
    """The MIMOFormer LRA recipe (or its Performer / softmax baselines'); unset per-task values come from
    `LRA_RECIPES` when the recipe is resolved."""

    description = ("Train MIMOFormer (or its Performer / softmax baselines) on a Long Range Arena task with the "
                   "authors' recipe on accelerate. Runs unchanged under `accelerate launch` on CPUs, one GPU or many.")
    script = "scripts/train_mimoformer.py"
    unit = "step"
    group_titles = {"optimisation": "optimisation (authors' LRA defaults; per-task values where unset)"}

    task: str = option("listops", "LRA task", "data", choices=sorted(LRA_RECIPES))
    data_dir: str = option(None, "listops: folder from scripts/generate_listops.py; image: CIFAR-10 parquet folder; "
                                 "text: IMDB parquet folder (default: the task's default location or Hub id)",
                           "data", type=str)
    dataset: str = option(None, "fine-tuning: Hub id of a text classification dataset (see --text-column)", "data",
                          type=str)
    train_file: str = option(None, "fine-tuning: parquet, CSV or JSON(L) file of texts and labels", "data", type=str)
    validation_file: str = option(None, "fine-tuning: validation file like --train-file (else held out of the "
                                        "training data)", "data", type=str)
    text_column: str = option("text", "fine-tuning: the text column", "data")
    text_column_2: str = option(None, "fine-tuning: the second text column of a pair task (dual-encoder checkpoints)",
                                "data", type=str)
    label_column: str = option("label", "fine-tuning: the label column (ClassLabel, strings or integers)", "data")
    max_length: int = option(None, "sequence length (default: the task's LRA length; fine-tuning: the checkpoint's "
                                   "positions, may be shorter)", "data", type=int)
    validation_size: int = option(None, "training examples held out for validation where the task has no "
                                        "validation split (fine-tuning default: 10% of the training data, every "
                                        "class in proportion)", "data", type=int)
    max_train_samples: int = option(None, "use only the first N training examples (smoke tests)", "data", type=int, minimum=1)
    max_eval_samples: int = option(None, "use only the first N validation examples (smoke tests)", "data", type=int, minimum=1)
    model_name_or_path: str = option(None, "fine-tune this checkpoint (folder or Hub id): weights, config, "
                                           "tokenizer; the model flags below are read from it (a contradicting flag "
                                           "is an error); new labels get a new classifier. Set --max-steps, "
                                           "--warmup-steps and --batch-size: unset, they are --task's LRA values",
                                     "model", type=str)
    attention_type: str = option("mimo_att", "", "model", choices=["softmax", "performer", "mimo_att", "mimo_att_mlp"])
    mimo_m: int = option(4, "grid rows M (1 for the baselines)", "model", minimum=1)
    mimo_n: int = option(4, "grid columns N (1 for the baselines)", "model", minimum=1)
    num_random_features: int = option(256, "R, random features of the kernel", "model")
    kernel: str = option("relu", "", "model", choices=["relu", "exp"])
    hidden_size: int = option(64, "", "model")
    num_attention_heads: int = option(4, "", "model")
    head_dim: int = option(16, "", "model")
    intermediate_size: int = option(128, "", "model")
    num_hidden_layers: int = option(2, "", "model")
    tie_layer_weights: bool = option(False, "share one block's weights across layers", "model")
    pooling: str = option("mean", "", "model", choices=["mean", "masked_mean", "cls"])
    position_embedding_type: str = option("learned", "", "model", choices=["learned", "sinusoidal"])
    classifier_hidden_size: int = option(None, "head hidden width (default: hidden size)", "model", type=int)
    hidden_dropout_prob: float = option(0.1, "", "model")
    embedding_dropout_prob: float = option(0.1, "", "model")
    max_steps: int = option(None, "optimizer steps of the one-cycle schedule", "optimisation", type=int, minimum=1)
    batch_size: int = option(None, "sequences per step per process", "optimisation", type=int, minimum=1)
    eval_batch_size: int = option(256, "", "optimisation", minimum=1)
    lr: float = option(1e-4, "peak learning rate", "optimisation")
    warmup_steps: int = option(None, "linear LR warm-up steps", "optimisation", type=int)
    weight_decay: float = option(0.0, "", "optimisation")
    adam_eps: float = option(1e-6, "", "optimisation")
    max_grad_norm: float = option(None, "clip gradients to this norm (authors: no clipping)", "optimisation",
                                  type=float)
    grid_warmup_steps: int = option(None, "MIMO warm-up: steps at --warmup-grid before the full grid (default: 1/8 "
                                          "of the steps for grids above 2x2, else 0)", "optimisation", type=int)
    warmup_grid: str = option("2x2", "grid of the MIMO warm-up, MxN", "optimisation")
    eval_every: int = option(500, "validate (and checkpoint) every this many steps", "run", minimum=1)
    eval_grids: list = option(None, "grids validated at each evaluation, MxN (default: the full grid)", "run",
                              nargs="*")
    stop_after_steps: int = option(None, "stop (after checkpointing) at this step; resume later", "run", type=int)
    max_minutes: float = option(None, "wall-clock budget: stop there, export the best model", "run", type=float)
    output_dir: str = option(None, "run folder: logs and the best model as a Hub-ready folder <output-dir>/hub",
                             "run", required=True)
    keep_checkpoints: int = option(1, "newest {unit} checkpoints to keep", "run")

    def resolved(self):
        """Per-task defaults filled in (batch, steps, warm-up, the task's LRA length), grids checked."""
        from mimo_hf.data.lra import LRA_TASKS

        recipe = LRA_RECIPES[self.task]
        values = {key: getattr(self, key) if getattr(self, key) is not None else recipe[key]
                  for key in ("batch_size", "max_steps", "warmup_steps")}
        if self.attention_type in ("softmax", "performer"):
            values.update(mimo_m=1, mimo_n=1)
        full = (values.get("mimo_m", self.mimo_m), values.get("mimo_n", self.mimo_n))
        warm = parse_grid(self.warmup_grid)
        values["warmup_grid"] = f"{min(warm[0], full[0])}x{min(warm[1], full[1])}"
        if self.grid_warmup_steps is None:
            values["grid_warmup_steps"] = values["max_steps"] // 8 if full[0] * full[1] > 4 else 0
        if self.max_length is None:
            values["max_length"] = LRA_TASKS[self.task]["max_length"]
        if values["warmup_steps"] >= values["max_steps"]:
            raise ValueError(f"--warmup-steps {values['warmup_steps']} must be below --max-steps {values['max_steps']}")
        return dataclasses.replace(self, **values)

    @property
    def uses_own_data(self):
        return bool(self.model_name_or_path or self.train_file or self.dataset)

    def implied(self):
        from mimo_hf.training.finetune import implied_by_checkpoint

        return implied_by_checkpoint(self)

    @property
    def full_grid(self):
        return (self.mimo_m, self.mimo_n)

    @property
    def warm_grid(self):
        return parse_grid(self.warmup_grid)

    @property
    def trained_grids(self):
        """The grids the steps run at: the full grid, and the warm-up grid when there is a warm-up."""
        grids = {self.full_grid}
        if self.grid_warmup_steps > 0:
            grids.add(self.warm_grid)
        return sorted(grids)

    @property
    def eval_grid_list(self):
        """The grids validated at each evaluation: the full grid and --eval-grids."""
        return sorted({self.full_grid, *(parse_grid(g) for g in (self.eval_grids or []))})

    def grid_at(self, step):
        """The grid a step trains at (the MIMO warm-up curriculum)."""
        return self.warm_grid if step < self.grid_warmup_steps else self.full_grid
