"""The ListOps generator: LRA's rules and value distribution, determinism, the presets' script, raw LRA lines."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from mimo_hf.data import listops
from mimo_hf.data.listops import apply_listops_operator, generate_listops
from mimo_hf.data.lra import load_lra_task
from mimo_hf.data.tokenization import encode_listops

OPERATORS = {"[MAX", "[MIN", "[MED", "[SM"}


def parse(text):
    """Independent reading of a generated expression: (tree, value, depth, arg counts).

    tree: a digit int or (operator, [children]); value uses numpy like LRA's `to_value`; depth counts the root
    as 1 and includes the digits (LRA's `generate_tree` depth); arg counts lists every operator's argument count.
    """
    stack = [("root", [])]
    for token in text.split():
        if token in OPERATORS:
            stack.append((token, []))
        elif token == "]":
            node = stack.pop()
            stack[-1][1].append(node)
        else:
            assert token.isdigit() and len(token) == 1, token
            stack[-1][1].append(int(token))
    assert len(stack) == 1 and len(stack[0][1]) == 1, "unbalanced expression"
    tree = stack[0][1][0]
    args = []

    def walk(node):  # -> (value, depth)
        if isinstance(node, int):
            return node, 1
        operator, children = node
        args.append(len(children))
        results = [walk(child) for child in children]
        values = [value for value, _ in results]
        value = {"[MAX": max, "[MIN": min, "[MED": lambda v: int(np.median(v)),
                 "[SM": lambda v: int(np.sum(v)) % 10}[operator](values)
        return value, 1 + max(depth for _, depth in results)

    value, depth = walk(tree)
    return tree, value, depth, args


def lra_string(tree):
    """The expression as LRA's raw tsv writes it: nested ( left right ) pairs, as its `to_string` does."""
    def nest(node):
        if isinstance(node, int):
            return node
        operator, children = node
        pair = (operator, nest(children[0]))
        for child in children[1:]:
            pair = (pair, nest(child))
        return (pair, "]")

    def render(t):
        return str(t) if not isinstance(t, tuple) else f"( {render(t[0])} {render(t[1])} )"

    return render(nest(tree))


@pytest.fixture(scope="module")
def small_listops():
    """600 expressions of 20..199 tokens (seed 3), generated once."""
    return generate_listops(600, 20, 200, seed=3)


def test_listops_rules_and_labels(small_listops):
    """Labels equal an independent evaluator; length bounds, depth <= 10 and 2..10 args per operator hold."""
    depths = []
    for text, label in small_listops:
        _, value, depth, args = parse(text)
        assert label == value and isinstance(label, int) and 0 <= label <= 9
        assert 20 < len(text.split()) < 200
        assert "(" not in text and ")" not in text and "  " not in text
        assert depth <= 10 and all(2 <= count <= 10 for count in args)
        depths.append(depth)
    assert len({text for text, _ in small_listops}) == 600
    assert max(depths) == 10  # the depth limit is reached, not just respected
    assert len({label for _, label in small_listops}) == 10


def test_listops_operator_values_follow_lra():
    """MED is int(np.median(...)) (floor of the middle pair's mean), SM is the sum mod 10."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        args = rng.integers(0, 10, rng.integers(2, 11)).tolist()
        assert apply_listops_operator("[MED", args) == int(np.median(args))
        assert apply_listops_operator("[SM", args) == sum(args) % 10
        assert apply_listops_operator("[MAX", args) == max(args) and apply_listops_operator("[MIN", args) == min(args)
    assert apply_listops_operator("[MED", [3, 8]) == 5 and apply_listops_operator("[MED", [1, 2]) == 1


def test_listops_value_probability_rule():
    """Unfiltered trees: a node below max depth is an operator with probability 0.25; args uniform on 2..max_args."""
    rng = random.Random(0)
    roots, args = [], []
    for _ in range(4000):
        tokens = []
        listops._random_tree(rng, 1, 10, 10, tokens, 10 ** 9)
        roots.append(tokens[0] in OPERATORS)
        if tokens[0] in OPERATORS:
            args.extend(parse(" ".join(tokens))[3][:1])  # the root's argument count
    assert abs(np.mean(roots) - 0.25) < 0.03
    assert abs(np.mean(args) - 6.0) < 0.3 and set(args) == set(range(2, 11))
    tokens = []  # at max_depth=2 every argument of the root is a digit
    while not tokens or tokens[0] not in OPERATORS:
        tokens = []
        listops._random_tree(rng, 1, 2, 10, tokens, 10 ** 9)
    assert all(token.isdigit() for token in tokens[1:-1])


def test_listops_deterministic_for_seed_and_workers(monkeypatch, small_listops):
    """Same seed, same data; another seed, other data; 1 or 3 worker processes, the same data."""
    assert generate_listops(600, 20, 200, seed=3) == small_listops
    assert generate_listops(50, 20, 200, seed=4)[:5] != small_listops[:5]
    monkeypatch.setattr(listops, "LISTOPS_CHUNK_SIZE", 40)  # several chunks, so the merge order matters
    serial = generate_listops(230, 20, 200, seed=5)
    assert generate_listops(230, 20, 200, seed=5, workers=3) == serial
    assert len({text for text, _ in serial}) == 230


def test_listops_duplicates_are_removed_and_exhaustion_detected():
    """A tiny space (lengths 4..5) is full of repeats: results stay distinct; impossible settings raise."""
    examples = generate_listops(300, 3, 6, seed=0)  # "[OP d d ]" and "[OP d d d ]": 4 * (100 + 1000) exist
    assert len({text for text, _ in examples}) == 300
    with pytest.raises(ValueError, match="distinct"):
        generate_listops(500, 3, 5, seed=0)  # only 4 * 100 expressions of 4 tokens exist
    with pytest.raises(ValueError, match="no ListOps expression"):
        generate_listops(10, 12, 13, seed=0, max_depth=2)  # depth 2 gives at most 12 tokens


def test_listops_raw_lra_lines_encode_identically(small_listops):
    """LRA's raw tsv form (with parentheses) of the same trees gives exactly our ids."""
    texts = [text for text, _ in small_listops[:50]]
    raw = [lra_string(parse(text)[0]) for text in texts]
    assert "(" in raw[0] and raw[0].replace("(", "").replace(")", "").split() == texts[0].split()
    ours_ids, ours_mask = encode_listops(texts, 200)
    raw_ids, raw_mask = encode_listops(raw, 200)
    assert torch.equal(ours_ids, raw_ids) and torch.equal(ours_mask, raw_mask)


def test_generate_listops_script(tmp_path, capsys):
    """The CLI writes a loadable folder; flags override the preset; --help shows the presets."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "generate_listops.py"
    spec = importlib.util.spec_from_file_location("generate_listops", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    record = script.main(["--preset", "cpu", "--train-size", "40", "--validation-size", "5", "--test-size", "5",
                          "--min-length", "10", "--max-length", "60", "--seed", "2", "--workers", "1",
                          "--output-dir", str(tmp_path), "--no-progress"])
    assert record["splits"] == {"train": 40, "validation": 5, "test": 5} and record["max_length"] == 60
    assert script.parse_args(["--preset", "cpu", "--output-dir", "x"]).train_size == 20000
    assert vars(script.parse_args(["--output-dir", "x"]))["min_length"] == 500
    assert load_lra_task("listops", "test", data_dir=tmp_path, max_length=60).input_ids.shape == (5, 60)
    with pytest.raises(SystemExit):
        script.main(["--help"])
    assert "ListOps-CPU" in capsys.readouterr().out


