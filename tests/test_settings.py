"""mimo_hf/settings.py: flags generated from settings dataclasses."""

import dataclasses

import pytest

from mimo_hf.settings import build_parser, from_namespace, option


@dataclasses.dataclass
class Counts:
    epochs: int = option(3, "epochs", minimum=1)
    threads: int = option(None, "threads", type=int, minimum=1)
    scale: float = option(0.5, "a fraction", minimum=0.0)
    seed: int = option(0, "no bound")


def test_minimum_refuses_smaller_values_at_parse_time(capsys):
    parser = build_parser(Counts, "test")
    settings = from_namespace(Counts, parser.parse_args(["--epochs", "1", "--threads", "2", "--scale", "0", "--seed", "-4"]))
    assert (settings.epochs, settings.threads, settings.scale, settings.seed) == (1, 2, 0.0, -4)
    assert from_namespace(Counts, parser.parse_args([])).threads is None  # a None default stays allowed
    for flags, message in ((["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
                           (["--threads", "-1"], "argument --threads: must be at least 1, got -1"),
                           (["--scale", "-0.1"], "argument --scale: must be at least 0.0, got -0.1"),
                           (["--epochs", "x"], "argument --epochs: invalid int value: 'x'")):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(flags)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_the_scripts_count_flags_refuse_zero(capsys):
    from mimo_hf.evaluation.mimoconv import MIMOConvEvaluation
    from mimo_hf.training.recipes import MIMOConvRecipe, MIMOFormerRecipe

    evaluation = build_parser(MIMOConvEvaluation, "evaluate")
    for parser, flag in ((MIMOConvRecipe.parser(), "--epochs"), (MIMOConvRecipe.parser(), "--batch-size"),
                         (MIMOFormerRecipe.parser(), "--max-steps"), (evaluation, "--threads"), (evaluation, "--batch-size")):
        with pytest.raises(SystemExit):
            parser.parse_args([flag, "0"])
        assert f"argument {flag}: must be at least 1, got 0" in capsys.readouterr().err
