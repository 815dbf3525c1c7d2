"""Configuration of MIMOFormer: a Long Range Arena Transformer encoder that attends in superposition.

This file is copied into every Hub-ready folder and runs there as remote code, so it imports only
the standard stack (``transformers``) and nothing from ``mimo_hf``.
"""

from transformers import PretrainedConfig

ATTENTION_TYPES = ("softmax", "performer", "mimo_att", "mimo_att_mlp")
KERNELS = ("relu", "exp")
POOLINGS = ("mean", "masked_mean", "cls")
POSITION_EMBEDDINGS = ("learned", "sinusoidal")


def _check_choice(field, value, allowed):
    if value not in allowed:
        raise ValueError(f"{field}={value!r} is not supported; allowed values: {', '.join(map(repr, allowed))}")


def _check_positive_int(field, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{field} must be an integer >= 1, got {value!r}")


def _check_probability(field, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{field} must be a probability in [0, 1), got {value!r}")


def check_grid(config, grid):
    """Validate an inference grid (m, n) against the trained grid (M, N): 1 <= m <= M, 1 <= n <= N."""
    if grid is None:
        default = check_default_grid(config.mimo_m, config.mimo_n, getattr(config, "default_grid", None))
        return (config.mimo_m, config.mimo_n) if default is None else tuple(default)
    try:
        m, n = (int(v) for v in grid)
    except (TypeError, ValueError):
        raise ValueError(f"mimo_grid must be a pair (m, n) of integers, got {grid!r}") from None
    if any(isinstance(v, bool) for v in grid) or not (1 <= m <= config.mimo_m and 1 <= n <= config.mimo_n):
        raise ValueError(
            f"mimo_grid={tuple(grid)!r} is outside the model's {config.mimo_m}x{config.mimo_n} grid; "
            f"allowed: 1 <= m <= {config.mimo_m} and 1 <= n <= {config.mimo_n}"
        )
    return m, n


def check_default_grid(mimo_m, mimo_n, default_grid):
    """`default_grid` as a [m, n] list (None: the full grid), or ValueError naming the allowed grids.

    Called by the config and again by every model built from it: `from_pretrained(..., default_grid=...)`
    and a pipeline's `model_kwargs` set the field on a loaded config without running `__init__`.
    """
    if default_grid is None:
        return None
    try:
        m, n = default_grid
        ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (m, n)) and 1 <= m <= mimo_m and 1 <= n <= mimo_n
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"default_grid={default_grid!r} is not an operating point of this model ({mimo_m}x{mimo_n} grid); "
            f"allowed: a pair [m, n] of integers with 1 <= m <= {mimo_m} and 1 <= n <= {mimo_n}, or None (the full grid)"
        )
    return [m, n]


class MIMOFormerConfig(PretrainedConfig):
    r"""Configuration of a MIMOFormer sequence classifier (Menet et al., NeurIPS 2023, LRA setting).

    Args:
        attention_type (`str`, defaults to `"mimo_att"`):
            `"softmax"` (exact attention baseline), `"performer"` (FAVOR+ baseline), `"mimo_att"`
            (FAVOR+S: only the attention core runs in superposition) or `"mimo_att_mlp"` (the attention
            output stays superposed and W_o, the second LayerNorm and the MLP run on the bundles).
        mimo_m (`int`, defaults to 2), mimo_n (`int`, defaults to 2):
            The M x N grid of one group: M * N inputs share one attention computation. Both must be 1
            for the softmax and Performer baselines.
        num_random_features (`int`, defaults to 256): R, random features of the kernel approximation.
        kernel (`str`, defaults to `"relu"`):
            Feature map: `"relu"` (phi(x) = ReLU(P x') + 0.001, the authors' choice) or `"exp"`
            (positive random features of the softmax kernel).
        vocab_size (`int`, defaults to 18): token vocabulary (the authors' CLS pooling uses id vocab_size - 1).
        max_position_embeddings (`int`, defaults to 2000): longest input sequence.
        position_embedding_type (`str`, defaults to `"learned"`): `"learned"` or `"sinusoidal"`.
        hidden_size (`int`, defaults to 64): d, the model width.
        num_attention_heads (`int`, defaults to 4): H.
        head_dim (`int`, defaults to 16): D_h; H * D_h need not equal d.
        intermediate_size (`int`, defaults to 128): MLP width.
        num_hidden_layers (`int`, defaults to 2): encoder blocks.
        tie_layer_weights (`bool`, defaults to `False`): one block's weights shared by every layer.
        pooling (`str`, defaults to `"mean"`):
            `"mean"` (the authors': final states times the mask, averaged over all L positions),
            `"masked_mean"` (average over real tokens only) or `"cls"` (the authors': prepend token
            vocab_size - 1, drop the last position, read position 0).
        classifier_hidden_size (`int`, *optional*): width of the head's hidden layer (default hidden_size).
        hidden_dropout_prob (`float`, defaults to 0.1): dropout after attention and in the MLP.
        embedding_dropout_prob (`float`, defaults to 0.1): dropout on token + position embeddings.
        dual_encoder (`bool`, defaults to `False`): retrieval head on [u, v, u*v, u-v] of two encodings.
        trained_grids (`list[list[int]]`, *optional*): grids the weights were trained at (metadata).
        default_grid (`list[int]`, *optional*):
            Grid [m, n] used when a forward call names none (default: the full grid). Set it at load to
            choose the operating point of a pipeline: `pipeline(..., model_kwargs={"default_grid": [1, 1]})`.
    """

    model_type = "mimoformer"

    def __init__(
        self,
        attention_type="mimo_att",
        mimo_m=2,
        mimo_n=2,
        num_random_features=256,
        kernel="relu",
        vocab_size=18,
        max_position_embeddings=2000,
        position_embedding_type="learned",
        hidden_size=64,
        num_attention_heads=4,
        head_dim=16,
        intermediate_size=128,
        num_hidden_layers=2,
        tie_layer_weights=False,
        pooling="mean",
        classifier_hidden_size=None,
        hidden_dropout_prob=0.1,
        embedding_dropout_prob=0.1,
        dual_encoder=False,
        trained_grids=None,
        default_grid=None,
        pad_token_id=0,
        **kwargs,
    ):
        _check_choice("attention_type", attention_type, ATTENTION_TYPES)
        _check_positive_int("mimo_m", mimo_m)
        _check_positive_int("mimo_n", mimo_n)
        if attention_type in ("softmax", "performer") and (mimo_m, mimo_n) != (1, 1):
            raise ValueError(
                f"attention_type={attention_type!r} is a single-input baseline and needs mimo_m=1 and mimo_n=1, "
                f"got {mimo_m}x{mimo_n}; use 'mimo_att' or 'mimo_att_mlp' for superposition"
            )
        _check_positive_int("num_random_features", num_random_features)
        _check_choice("kernel", kernel, KERNELS)
        _check_positive_int("vocab_size", vocab_size)
        _check_positive_int("max_position_embeddings", max_position_embeddings)
        _check_choice("position_embedding_type", position_embedding_type, POSITION_EMBEDDINGS)
        for field, value in (("hidden_size", hidden_size), ("num_attention_heads", num_attention_heads),
                             ("head_dim", head_dim), ("intermediate_size", intermediate_size),
                             ("num_hidden_layers", num_hidden_layers)):
            _check_positive_int(field, value)
        if position_embedding_type == "sinusoidal" and hidden_size % 2:
            raise ValueError(f"sinusoidal position embeddings need an even hidden_size, got {hidden_size}")
        _check_choice("pooling", pooling, POOLINGS)
        if pooling == "cls" and vocab_size < 2:
            raise ValueError("pooling='cls' uses token id vocab_size - 1 as [CLS]; vocab_size must be >= 2")
        if classifier_hidden_size is None:
            classifier_hidden_size = hidden_size
        _check_positive_int("classifier_hidden_size", classifier_hidden_size)
        _check_probability("hidden_dropout_prob", hidden_dropout_prob)
        _check_probability("embedding_dropout_prob", embedding_dropout_prob)
        if trained_grids is not None:
            trained_grids = sorted({(int(m), int(n)) for m, n in trained_grids})
            bad = [g for g in trained_grids if not (1 <= g[0] <= mimo_m and 1 <= g[1] <= mimo_n)]
            if bad:
                raise ValueError(f"trained_grids {bad} lie outside the {mimo_m}x{mimo_n} grid")
            trained_grids = [list(g) for g in trained_grids]

        self.attention_type = attention_type
        self.mimo_m = mimo_m
        self.mimo_n = mimo_n
        self.num_random_features = num_random_features
        self.kernel = kernel
        self.vocab_size = vocab_size
        self.max_position_embeddings = max_position_embeddings
        self.position_embedding_type = position_embedding_type
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.head_dim = head_dim
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.tie_layer_weights = bool(tie_layer_weights)
        self.pooling = pooling
        self.classifier_hidden_size = classifier_hidden_size
        self.hidden_dropout_prob = float(hidden_dropout_prob)
        self.embedding_dropout_prob = float(embedding_dropout_prob)
        self.dual_encoder = bool(dual_encoder)
        self.trained_grids = trained_grids
        self.default_grid = check_default_grid(mimo_m, mimo_n, default_grid)
        super().__init__(pad_token_id=pad_token_id, **kwargs)

    def __setattr__(self, key, value):
        # `from_pretrained(..., default_grid=[m, n])` and a pipeline's `model_kwargs` set the field on a
        # built config: validate it there too, so a bad operating point fails at load.
        if key == "default_grid" and "mimo_m" in self.__dict__ and "mimo_n" in self.__dict__:
            value = check_default_grid(self.mimo_m, self.mimo_n, value)
        super().__setattr__(key, value)

    @property
    def num_superpositions(self):
        """Inputs per group at the full grid: M * N."""
        return self.mimo_m * self.mimo_n

    @property
    def cls_token_id(self):
        """The token the authors' CLS pooling prepends."""
        return self.vocab_size - 1

    @property
    def operating_points(self):
        """Every grid (m, n) the model can run at, smallest first."""
        return [(m, n) for m in range(1, self.mimo_m + 1) for n in range(1, self.mimo_n + 1)]
