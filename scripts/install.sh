#!/usr/bin/env bash
# Sets up .venv with the project and its tools. Everything comes from the package registry; torch is
# pinned to the CPU build (2.13.0) that these machines install from disk.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, found {sys.version.split()[0]}"'
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --progress-bar off -e '.[dev]'
echo "installed: $(.venv/bin/copilot --help >/dev/null && echo 'copilot command ready in .venv/bin')"
