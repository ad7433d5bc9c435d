#!/usr/bin/env bash
# The project's checks: lint, types, the import contract of DESIGN.md, the test suite, then the sample
# brand's eval suite with the grounded engine (exit 1 when a metric falls below the suite's thresholds).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check copilot knowledge api evals tests
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest "$@"
if [ "$#" -eq 0 ]; then  # the whole suite: gate on the sample brand's evals too (run and report in eval-runs/ci)
    .venv/bin/copilot eval run samples/brightwave/evals/suite.jsonl --engine grounded --out eval-runs/ci
fi
