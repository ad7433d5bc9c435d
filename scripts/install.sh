#!/usr/bin/env bash
# Sets up .venv with the project and its tools. Everything comes from the package registries; torch is
# pinned to the CPU build (2.13.0) that these machines install from disk. The page tests drive Debian's
# Chromium (no browser is downloaded by Playwright): it is installed with apt when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, found {sys.version.split()[0]}"'
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --progress-bar off -e '.[dev]'
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing Debian's chromium for the page tests"
        (DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1) || {
            DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && \
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
    else
        echo "note: /usr/bin/chromium is missing; install Debian's chromium (apt-get install chromium) for the page tests" >&2
    fi
fi
echo "installed: $(.venv/bin/copilot --help >/dev/null && echo 'copilot command ready in .venv/bin')"
