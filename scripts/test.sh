#!/usr/bin/env bash
# The project's checks: lint, types, the import contract of DESIGN.md, then the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check copilot knowledge api evals tests
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest "$@"
