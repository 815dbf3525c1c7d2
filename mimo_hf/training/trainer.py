"""`MIMOTrainer`: `transformers.Trainer` with the MIMONets recipe's operating points and regularisers.

A plain `Trainer` calls `model(**batch)`, which runs a MIMOConv at its default operating point and a
MIMOFormer at its full grid, with cross-entropy only: a dynamic checkpoint (trained at k = N and k = 1)
would silently stop being trained at k = 1, and the binding/isometry regularisers would be gone. This
subclass chooses the operating point of every step as the project's own loop does and adds the
regularisers of the recipe:

    from mimo_hf.training.trainer import MIMOTrainer
    trainer = MIMOTrainer(model=model, args=TrainingArguments(...), train_dataset=ds,
                          operating_points=[1, 4], full_capacity_prob=0.8,   # MIMOConv: k per step
                          binding_coef=0.1, isometry_coef=1e-4)
    trainer.train()
    trainer.operating_point_counts   # {4: steps at k=4, 1: steps at k=1}

MIMOConv: each training step runs at the largest of `operating_points` with probability
`full_capacity_prob`, else at the smallest (default: the config's `trained_superpositions`, p = 0.8 when
there are two, as in the paper); the loss is cross-entropy + binding_coef * binding regulariser +
isometry_coef * isometry regulariser. MIMOFormer: the first `grid_warmup_steps` steps run at
`warmup_grid`, the rest at the full grid (the authors' MIMO warm-up); no regulariser. Evaluation
(`model.eval()`) runs at the model's default operating point, like a pipeline.
"""

import numpy as np
from transformers import Trainer


class MIMOTrainer(Trainer):
    """`Trainer` whose training steps sample the recipe's operating points and add its regularisers."""

    def __init__(self, *args, operating_points=None, full_capacity_prob=None, binding_coef=0.1,
                 isometry_coef=1e-4, warmup_grid=None, grid_warmup_steps=0, operating_point_seed=0, **kwargs):
        super().__init__(*args, **kwargs)
        config = self.model.config
        self.is_mimoconv = config.model_type == "mimoconv"
        if self.is_mimoconv:
            points = sorted(operating_points or config.trained_superpositions or [config.num_superpositions])
            bad = [k for k in points if k not in config.operating_points]
            if bad or len(points) > 2:
                raise ValueError(f"operating_points {points}: give one or two of {config.operating_points}")
            self.points = points
            self.full_capacity_prob = (full_capacity_prob if full_capacity_prob is not None
                                       else 0.8 if len(points) == 2 else 1.0)
        else:
            if operating_points is not None or full_capacity_prob is not None:
                raise ValueError("MIMOFormer trains at its full grid after `grid_warmup_steps` at `warmup_grid`; "
                                 "operating_points / full_capacity_prob are MIMOConv settings")
            self.full_grid = (config.mimo_m, config.mimo_n)
            self.warmup_grid = tuple(warmup_grid) if warmup_grid else self.full_grid
            self.grid_warmup_steps = grid_warmup_steps
        self.binding_coef, self.isometry_coef = binding_coef, isometry_coef
        self.rng = np.random.default_rng(operating_point_seed)
        self.operating_point_counts = {}

    def operating_point(self):
        """The operating point of the next training step: {"num_superpositions": k} or {"mimo_grid": (m, n)}."""
        if self.is_mimoconv:
            k = self.points[-1] if self.full_capacity_prob >= 1.0 or self.rng.random() < self.full_capacity_prob \
                else self.points[0]
            return {"num_superpositions": k}
        grid = self.warmup_grid if self.state.global_step < self.grid_warmup_steps else self.full_grid
        return {"mimo_grid": grid}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        point = self.operating_point()
        key = next(iter(point.values()))
        self.operating_point_counts[key] = self.operating_point_counts.get(key, 0) + 1
        outputs = model(**inputs, **point)
        loss = outputs.loss
        raw = self.accelerator.unwrap_model(model)
        if self.is_mimoconv and self.binding_coef:
            loss = loss + self.binding_coef * raw.binding_regularization()
        if self.is_mimoconv and self.isometry_coef:
            loss = loss + self.isometry_coef * raw.isometry_regularization()
        return (loss, outputs) if return_outputs else loss
