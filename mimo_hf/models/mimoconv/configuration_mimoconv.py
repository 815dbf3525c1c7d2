"""Configuration of MIMOConv: a Wide ResNet that classifies several images at once, in superposition.

This file is copied into every Hub-ready folder and runs there as remote code, so it imports only
the standard stack (``transformers``) and nothing from ``mimo_hf``.
"""

from transformers import PretrainedConfig

BINDINGS = ("hrr", "mbat", "none")
ACTIVATIONS = ("relu", "prelu", "srelu")
# The authors initialise PReLU slopes at 0.5 and SReLU offsets at -1; plain ReLU has no parameter.
DEFAULT_ACTIVATION_INIT = {"relu": None, "prelu": 0.5, "srelu": -1.0}


def _check_choice(field, value, allowed):
    if value not in allowed:
        raise ValueError(f"{field}={value!r} is not supported; allowed values: {', '.join(map(repr, allowed))}")


def _check_positive_int(field, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{field} must be an integer >= 1, got {value!r}")


def divisors(n):
    """The operating points a model of capacity ``n`` can run at: every k with k | n, ascending."""
    return [k for k in range(1, n + 1) if n % k == 0]


def check_default_superpositions(num_superpositions, default_superpositions):
    """Raise unless `default_superpositions` is an operating point (a divisor) of capacity N.

    Called by the config and again by every model built from it: `from_pretrained(...,
    default_superpositions=k)` and a pipeline's `model_kwargs` set the field on a loaded config
    without running `__init__`, and a bad value must fail at load, not at the first forward call.
    """
    k = default_superpositions
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or num_superpositions % k:
        raise ValueError(
            f"default_superpositions={k!r} is not an operating point of this model (capacity N={num_superpositions}); "
            f"allowed values (the divisors of N): {divisors(num_superpositions)}"
        )


class MIMOConvConfig(PretrainedConfig):
    r"""Configuration of a MIMOConv image classifier (Menet et al., NeurIPS 2023).

    Args:
        num_superpositions (`int`, defaults to 4):
            Superposition capacity N: how many key slots the binding has, i.e. the most images that
            share one pass through the trunk.
        default_superpositions (`int`, *optional*):
            Operating point k used when a forward call names none. Must divide N. Defaults to N.
            Set it at load to choose the operating point of a pipeline:
            `pipeline(..., model_kwargs={"default_superpositions": 1})`.
        binding (`str`, defaults to `"hrr"`):
            `"hrr"` (position-wise holographic binding with one learned C-vector key per slot),
            `"mbat"` (a learned C x C matrix per slot) or `"none"` (identity; only with N = 1).
        depth (`int`, defaults to 16): Wide ResNet depth 6n + 4 (10, 16, 22, 28, ...).
        width (`int`, defaults to 4): Wide ResNet width factor w (stage widths 16w, 32w, 64w).
        initial_width (`int` or `float`, defaults to 4):
            Stem width factor s; the stem has C = 16 * s channels, which must be a whole number (and
            even for HRR binding).
        num_channels (`int`, defaults to 3): input image channels. A grayscale model (1 channel) also
            accepts 3-channel `pixel_values` and reduces them to luminance (ITU-R 601-2, as PIL's "L"),
            which is what lets its image processor convert every picture to RGB first.
        image_size (`int`, defaults to 32): input height and width.
        activation (`str`, defaults to `"prelu"`): trunk activation, `"relu"`, `"prelu"` or `"srelu"`.
        activation_init (`float`, *optional*):
            Initial PReLU slope (default 0.5) or SReLU offset (default -1). Must be unset for ReLU.
        skip_init (`bool`, defaults to `False`):
            Residual branches are scaled by a learned scalar initialised to 0.
        trainable_keys (`bool`, defaults to `True`): whether the binding keys are learned.
        trained_superpositions (`list[int]`, *optional*):
            Operating points the weights were trained at (metadata for evaluation and model cards).
    """

    model_type = "mimoconv"

    def __init__(
        self,
        num_superpositions=4,
        default_superpositions=None,
        binding="hrr",
        depth=16,
        width=4,
        initial_width=4,
        num_channels=3,
        image_size=32,
        activation="prelu",
        activation_init=None,
        skip_init=False,
        trainable_keys=True,
        trained_superpositions=None,
        **kwargs,
    ):
        _check_positive_int("num_superpositions", num_superpositions)
        if default_superpositions is None:
            default_superpositions = num_superpositions
        check_default_superpositions(num_superpositions, default_superpositions)
        _check_choice("binding", binding, BINDINGS)
        if binding == "none" and num_superpositions != 1:
            raise ValueError(
                f"binding='none' cannot keep {num_superpositions} superposed images apart; "
                "use num_superpositions=1 with binding='none', or binding 'hrr' or 'mbat'"
            )
        _check_positive_int("depth", depth)
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"depth={depth} must be 6n+4 with n >= 1 (allowed: 10, 16, 22, 28, 34, 40, ...)")
        _check_positive_int("width", width)
        if isinstance(initial_width, bool) or not isinstance(initial_width, (int, float)) or initial_width <= 0:
            raise ValueError(f"initial_width must be a positive number, got {initial_width!r}")
        stem_channels = 16 * initial_width
        if abs(stem_channels - round(stem_channels)) > 1e-9:
            raise ValueError(f"initial_width={initial_width} must make 16 * initial_width a whole number of channels")
        if binding == "hrr" and round(stem_channels) % 2:
            raise ValueError(
                f"binding='hrr' needs an even channel count, but initial_width={initial_width} gives "
                f"{round(stem_channels)} stem channels; allowed: initial_width with 16 * initial_width even"
            )
        _check_positive_int("num_channels", num_channels)
        _check_positive_int("image_size", image_size)
        _check_choice("activation", activation, ACTIVATIONS)
        if activation_init is None:
            activation_init = DEFAULT_ACTIVATION_INIT[activation]
        elif activation == "relu":
            raise ValueError("activation_init must be None with activation='relu' (plain ReLU has no parameter)")
        if trained_superpositions is not None:
            trained_superpositions = sorted({int(k) for k in trained_superpositions})
            bad = [k for k in trained_superpositions if k < 1 or num_superpositions % k]
            if bad:
                raise ValueError(
                    f"trained_superpositions {bad} do not divide num_superpositions={num_superpositions}; "
                    f"allowed values: {divisors(num_superpositions)}"
                )

        self.num_superpositions = num_superpositions
        self.default_superpositions = default_superpositions
        self.binding = binding
        self.depth = depth
        self.width = width
        self.initial_width = initial_width
        self.num_channels = num_channels
        self.image_size = image_size
        self.activation = activation
        self.activation_init = activation_init
        self.skip_init = bool(skip_init)
        self.trainable_keys = bool(trainable_keys)
        self.trained_superpositions = trained_superpositions
        super().__init__(**kwargs)

    def __setattr__(self, key, value):
        # `from_pretrained(..., default_superpositions=k)` and a pipeline's `model_kwargs` set the field
        # on a built config: validate it there too, so a bad operating point fails at load.
        if key == "default_superpositions" and "num_superpositions" in self.__dict__:
            value = self.num_superpositions if value is None else value
            check_default_superpositions(self.num_superpositions, value)
        super().__setattr__(key, value)

    @property
    def stem_channels(self):
        """C: channels of the stem output, where binding and bundling happen."""
        return int(round(16 * self.initial_width))

    @property
    def blocks_per_stage(self):
        return (self.depth - 4) // 6

    @property
    def num_features(self):
        """F: features per bundle after global pooling (64 * width)."""
        return 64 * self.width

    @property
    def operating_points(self):
        """Every k the model can run at (k | N), ascending."""
        return divisors(self.num_superpositions)
