#!/usr/bin/env bash
# Install Debian's `chromium` for the Space's headless-browser test (tests/test_space.py), when missing.
#
# Part of the README's test command (and so of .ci/run). What it does, decided so that the command
# never fails for a reason unrelated to the code, yet CI does check the page in a browser:
# - a chromium (or chromium-browser) on PATH, or MIMO_TEST_CHROMIUM set: nothing to do;
# - root with apt-get (CI, this project's machines): `apt-get update` once, then
#   `apt-get install -y --no-install-recommends chromium`; if that fails (e.g. no network) the command
#   fails, so a CI run never passes with the browser check silently skipped;
# - not root, or no apt-get (a developer's laptop, macOS): print how to install it and go on; the
#   browser check then skips with that reason and every other test runs.
set -euo pipefail

if [[ -n "${MIMO_TEST_CHROMIUM:-}" ]] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium.sh: no chromium on PATH and no root apt-get here; the Space's browser check will skip." \
         "Install Chromium (Debian: sudo apt-get install chromium) or set MIMO_TEST_CHROMIUM to run it." >&2
    exit 0
fi
echo "install_chromium.sh: installing Debian's chromium for the Space's browser test" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null
