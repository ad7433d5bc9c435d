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
    # the retrieval and API tests again in the server configuration: a Chroma server the tests start and a
    # PostgreSQL database per test (the files left out start their own servers or do not use the stores)
    COPILOT_TEST_BACKEND=server .venv/bin/python -m pytest -q tests/knowledge/test_retrieval.py \
        tests/api --ignore=tests/api/test_end_to_end.py --ignore=tests/api/test_scaleout.py \
        --ignore=tests/api/test_outages.py --ignore=tests/api/test_fuzz.py --ignore=tests/api/test_storage_faults.py \
        --ignore=tests/api/test_rate_limits.py
    .venv/bin/copilot eval run samples/brightwave/evals/suite.jsonl --engine grounded --out eval-runs/ci
fi
