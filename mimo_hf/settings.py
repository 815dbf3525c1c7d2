"""Settings as typed dataclasses: one field per command-line flag, the parser generated from the fields.

A script's settings (a training recipe, an evaluation run) are declared once, as a dataclass whose
fields carry their flag's help text, argparse group and type in `option(...)`. From that one
declaration come the `argparse` parser (`build_parser`), the typed object library code receives
(`from_namespace`), the record written beside a checkpoint (`record`, with local paths made
relative) and, for a card, the command line that reproduces a record (`command_line`).

Field order inside a group is the order of the flags in `--help` and in `command_line`; fields of a
base class (the options every script of a kind shares) come after the class's own fields of the
same group.
"""

import argparse
import dataclasses
import os
import shlex

GROUP_TITLES = {"data": "data", "model": "model", "optimisation": "optimisation", "run": "run", None: "options"}
# Record fields that hold local paths: written relative to the working directory (no machine paths on the Hub).
PATH_FIELDS = ("output_dir", "checkpoint_dir", "data_dir", "resume", "train_dir", "validation_dir", "train_file",
               "validation_file", "model_name_or_path")


def option(default=None, help="", group=None, **argparse_kwargs):
    """A dataclass field that is also a flag `--field-name`; `argparse_kwargs` go to `add_argument`.

    The flag's type is the default's type unless given; a bool default makes a `store_true` flag.
    `required=True` makes a flag without default; `default_factory` (for lists) is passed through;
    `minimum=m` refuses smaller values at parse time (a usage error instead of a failure deep in a run).
    """
    metadata = {"help": help, "group": group, "argparse": argparse_kwargs}
    if "default_factory" in argparse_kwargs:
        return dataclasses.field(default_factory=argparse_kwargs.pop("default_factory"), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag_name(field):
    return "--" + field.name.replace("_", "-")


def _default(field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def ordered_fields(cls):
    """The flag fields of `cls` in parser order: by group, a class's own fields before inherited ones."""
    inherited = {f.name for base in cls.__mro__[1:] if dataclasses.is_dataclass(base) for f in dataclasses.fields(base)}
    flags = [f for f in dataclasses.fields(cls) if "argparse" in f.metadata]
    # The usual groups in their order, then a class's own groups (titled in `group_titles`) as they come.
    groups = list(GROUP_TITLES) + list(dict.fromkeys(f.metadata["group"] for f in flags))
    return sorted(flags, key=lambda f: (groups.index(f.metadata["group"]), f.name in inherited))


def at_least(convert, minimum):
    """An argparse `type` that converts with `convert` and refuses values below `minimum`."""
    def parse(text):
        value = convert(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = getattr(convert, "__name__", "value")  # argparse names the type in "invalid int value"
    return parse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """`--help` with each flag's default, unless its help already says what the default is (a default
    computed from the checkout's location would print a machine path), and the description's line
    breaks kept."""

    def _get_help_string(self, action):
        if "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser(cls, description, formatter_class=HelpFormatter):
    """The `argparse` parser of a settings dataclass (see the module docstring)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=formatter_class)
    titles = getattr(cls, "group_titles", {})
    values = cls.help_values() if hasattr(cls, "help_values") else {}
    groups = {}
    for field in ordered_fields(cls):
        name = field.metadata["group"]
        if name not in groups:
            # Flags without a group join argparse's own "options" (with --help) instead of a second heading of that name.
            groups[name] = parser if name is None and name not in titles else \
                parser.add_argument_group(titles.get(name, GROUP_TITLES.get(name, name)))
        kwargs = dict(field.metadata["argparse"])
        minimum = kwargs.pop("minimum", None)
        default = _default(field)
        if isinstance(default, bool) and "action" not in kwargs:
            kwargs["action"] = "store_true"
        elif "type" not in kwargs and default is not None and "action" not in kwargs \
                and not isinstance(default, (list, tuple)):
            kwargs["type"] = type(default)
        if minimum is not None:
            kwargs["type"] = at_least(kwargs.get("type", int), minimum)
        if not kwargs.get("required"):
            kwargs["default"] = default
        help_text = field.metadata["help"].format(**values).replace("%", "%%")
        groups[name].add_argument(flag_name(field), dest=field.name, help=help_text, **kwargs)
    return parser


def explicit_flags(parser, argv=None):
    """The dests of the flags the command line `argv` (default sys.argv[1:]) names explicitly, whatever
    their values: parsed again with every default suppressed, so abbreviations and `--flag=value` count."""
    import copy

    quiet = copy.deepcopy(parser)
    for action in quiet._actions:
        action.default = argparse.SUPPRESS
        action.required = False
    return set(vars(quiet.parse_args(argv)))


def from_namespace(cls, namespace):
    """The settings object of a parsed namespace (every field must be there)."""
    return cls(**{field.name: getattr(namespace, field.name) for field in dataclasses.fields(cls)})


def from_record(cls, record, source="the record"):
    """Settings from a recorded dict (`record`), fields the record predates taking their defaults.

    A key the settings class does not know is an error: a record is never read partly.
    """
    names = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(record) - names)
    if unknown:
        raise ValueError(f"{source} holds settings {cls.__name__} does not know: {unknown}")
    return cls(**record)


def record(settings):
    """The settings as a JSON-able dict, local paths made relative to the working directory."""
    out = dataclasses.asdict(settings)
    for key in PATH_FIELDS:
        value = out.get(key)
        if isinstance(value, str) and os.path.isabs(value):
            out[key] = os.path.relpath(value)
    return out


def command_line(cls, values, script, implied=None):
    """`python <script> ...`: every flag whose value in `values` (a record) differs from its default,
    in parser order, so that parsing the command gives back exactly these values. `implied`: values
    the parsed settings get anyway (e.g. from a preset), left out like defaults."""
    words = ["python", script]
    implied = implied or {}
    for field in ordered_fields(cls):
        if field.name not in values:
            continue
        value, required = values[field.name], field.metadata["argparse"].get("required", False)
        if value == implied.get(field.name, _default(field)) and not required:
            continue
        if field.metadata["argparse"].get("action") is argparse.BooleanOptionalAction:
            words.append(flag_name(field) if value else "--no-" + flag_name(field)[2:])
        elif isinstance(_default(field), bool):
            words.append(flag_name(field))
        elif isinstance(value, (list, tuple)):
            words += [flag_name(field), *map(str, value)]
        else:
            words += [flag_name(field), str(value)]
    return shlex.join(words)


def parse_grid(text):
    """A grid written MxN (e.g. "2x2") as (m, n)."""
    try:
        m, n = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"a grid is written MxN (e.g. 2x2), got {text!r}") from None
    return m, n


def grid_text(grid):
    """(m, n) -> "MxN"."""
    return f"{grid[0]}x{grid[1]}"


def grid_flag(text):
    """`parse_grid` as an argparse type: a bad grid is a usage error naming the expected form."""
    try:
        return parse_grid(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
