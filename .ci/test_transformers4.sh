#!/usr/bin/env bash
# The transformers 4.x leg: the zoo's Hub folders (assembled from zoo/ as push_to_hub.py would) must load
# on transformers 4.57 with its huggingface_hub (<1.0) and tokenizers, not only on the 5.x of the main
# environment, and so must the zoo/ folders themselves with the package (the repository on the path).
#
# It builds a small venv (build/venv-transformers4, kept for reruns) holding only the 4.x pins (.ci/requirements-transformers4.txt) and
# reuses everything else (torch, numpy, pillow, safetensors, pytest) from the main environment through
# a .pth file. A .pth entry goes AFTER the venv's own site-packages, so the pins shadow the main
# environment's transformers 5 / hub 2; pip only installs into the venv ("Not uninstalling ...
# outside environment") and never changes the main environment. That is ~25-40 s and 160 MB instead
# of ~60 s and 1.2 GB for a venv with its own copy of torch (measured on the 2-core CI machine).
#
# pip then prints "ERROR: pip's dependency resolver ... datasets requires huggingface-hub>=1.31":
# expected, packages of the main environment that this leg never imports; pip exits 0.
#
# Usage: .ci/test_transformers4.sh [pytest args]   (PYTHON: the main environment's python)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
start=$SECONDS

# Kept (build/ is git-ignored): a rerun finds the pins installed and takes seconds; deleting the
# venv's many small files would cost ~20 s on this machine's disk.
venv=${TRANSFORMERS4_VENV:-build/venv-transformers4}
[ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
# Every site directory the main environment imports from, in its order: its own purelib/platlib and, for a
# venv made with --system-site-packages, the base interpreter's (where torch may live).
main_site=$("$PYTHON" -c 'import os, site, sys, sysconfig
p = sysconfig.get_paths()
dirs = [p["purelib"], p["platlib"], *site.getsitepackages(),
        *(d for d in sys.path if os.path.basename(d) in ("site-packages", "dist-packages"))]
print("\n".join(dict.fromkeys(d for d in dirs if os.path.isdir(d))))')
venv_site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf '%s\n' "$main_site" >"$venv_site/main-environment.pth"  # rewritten: the main env may have moved
"$venv/bin/python" -m pip install -q -r .ci/requirements-transformers4.txt
"$venv/bin/python" -c 'import transformers, huggingface_hub, tokenizers, torch
print(f"transformers {transformers.__version__}, huggingface_hub {huggingface_hub.__version__}, "
      f"tokenizers {tokenizers.__version__}, torch {torch.__version__}")
assert transformers.__version__.startswith("4.57."), transformers.__version__'
echo "transformers-4 environment ready in $((SECONDS - start)) s"

# tests/hub/test_hub_pipelines.py: operating points through pipelines (custom pipeline classes, model_kwargs).
# --noconftest: the loading tests are self-contained (no shared fixtures). The parent process assembles
# the Hub folders with the repository's mimo_hf (`python -m pytest` from the repo root puts it on the
# path); the child that loads them blocks mimo_hf. Run from the repo root for pyproject.toml.
HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "$venv/bin/python" -m pytest --noconftest -p no:cacheprovider -q \
    tests/hub/test_hub_loading.py tests/hub/test_hub_pipelines.py "$@"   # last: CI reads pytest's closing line
