#!/usr/bin/env python
"""Rewrite the generated tables of the README and docs/ from the scripts that print them.

Each table sits between `<!-- NAME:start -->` and `<!-- NAME:end -->` markers and is exactly what one
committed command prints from committed results (the tests compare every block with its command):

    README.md  zoo-table             python scripts/zoo_table.py --targets
    README.md  zoo-table-mimoformer  python scripts/zoo_table.py --architecture mimoformer --targets
    README.md  publish-table         python scripts/zoo_table.py --publish
    README.md  deploy-table          python scripts/deploy_table.py --model mimoconv16-2-n4 --targets
    README.md  recipe-study          python scripts/recipe_study.py --table docs/recipe_study.json
    docs/mimoconv_recipe_study.md  recipe-study  (the same command)

Run it after a results file changes (a finished zoo run, a new deploy measurement): it replaces each
block's content and nothing else, and names the blocks it changed. --check writes nothing and exits 1
when a block differs from its command's output (what CI would fail on).

Examples:
    python scripts/refresh_tables.py            # rewrite every stale block
    python scripts/refresh_tables.py --check    # list stale blocks, exit 1 if any
    python scripts/refresh_tables.py --only deploy-table
"""

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    marker: str
    command: tuple  # a script under scripts/ and its arguments

    def render(self, root=ROOT):
        """The command's stdout (run from the repository root, offline), stripped."""
        script, *arguments = self.command
        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
        proc = subprocess.run([sys.executable, str(Path(root) / script), *arguments], cwd=root, env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(self.command)} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        return proc.stdout.strip()


RECIPE_TABLE = ("scripts/recipe_study.py", "--table", "docs/recipe_study.json")
BLOCKS = (
    Block("README.md", "zoo-table", ("scripts/zoo_table.py", "--targets")),
    Block("README.md", "zoo-table-mimoformer", ("scripts/zoo_table.py", "--architecture", "mimoformer", "--targets")),
    Block("README.md", "publish-table", ("scripts/zoo_table.py", "--publish")),
    Block("README.md", "deploy-table", ("scripts/deploy_table.py", "--model", "mimoconv16-2-n4", "--targets")),
    Block("README.md", "recipe-study", RECIPE_TABLE),
    Block("docs/mimoconv_recipe_study.md", "recipe-study", RECIPE_TABLE),
)


def block_span(text, marker, page="the page"):
    """(start, end) of the content between the marker lines; clear errors for missing or repeated markers."""
    start_line, end_line = f"<!-- {marker}:start -->\n", f"<!-- {marker}:end -->"
    for line in (start_line, end_line):
        if text.count(line) != 1:
            raise ValueError(f"{page} must hold {line.strip()!r} exactly once (found {text.count(line)})")
    start = text.index(start_line) + len(start_line)
    end = text.index(end_line)
    if end < start:
        raise ValueError(f"{page}: {end_line!r} comes before {start_line.strip()!r}")
    return start, end


def block_content(text, marker, page="the page"):
    start, end = block_span(text, marker, page)
    return text[start:end].strip()


def replace_block(text, marker, content, page="the page"):
    """`text` with the block's content replaced by `content` (one trailing newline before the end marker)."""
    start, end = block_span(text, marker, page)
    return text[:start] + content.strip() + "\n" + text[end:]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a block is stale")
    p.add_argument("--only", nargs="+", default=None, metavar="MARKER",
                   help=f"only these blocks (markers: {', '.join(sorted({b.marker for b in BLOCKS}))})")
    args = p.parse_args(argv)
    unknown = sorted(set(args.only or []) - {b.marker for b in BLOCKS})
    if unknown:
        p.error(f"unknown block(s) {unknown}; known: {sorted({b.marker for b in BLOCKS})}")
    return args


def main(argv=None, root=ROOT, blocks=BLOCKS):
    """Returns [(page, marker)] of the blocks that were stale (rewritten unless --check)."""
    args = parse_args(argv)
    selected = [b for b in blocks if args.only is None or b.marker in args.only]
    rendered = {}
    stale = []
    for block in selected:
        if block.command not in rendered:
            rendered[block.command] = block.render(root)
        path = Path(root) / block.page
        text = path.read_text()
        if block_content(text, block.marker, block.page) != rendered[block.command]:
            stale.append((block.page, block.marker))
            if not args.check:
                path.write_text(replace_block(text, block.marker, rendered[block.command], block.page))
    for page, marker in stale:
        print(f"{page}: {marker} {'is stale' if args.check else 'rewritten'}")
    if not stale:
        print(f"{len(selected)} block(s) up to date")
    if args.check and stale:
        raise SystemExit(1)
    return stale


if __name__ == "__main__":
    main()
