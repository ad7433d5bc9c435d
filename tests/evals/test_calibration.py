"""The confidence fit and threshold choice of ``copilot eval calibrate``, on rows whose answer is known."""

from __future__ import annotations

import random

from copilot.suggest import Calibration
from evals.calibration import fit


def test_the_fit_separates_right_from_unanswerable_candidates() -> None:
    rng = random.Random(0)
    rows = []
    for _ in range(400):
        right = rng.random() < 0.6
        dense = rng.uniform(0.55, 0.8) if right else rng.uniform(0.2, 0.6)
        rows.append((dense, rng.uniform(0.0, 0.1), 0, right, True))
        rows.append((rng.uniform(0.1, 0.45), rng.uniform(0.0, 0.05), 0, False, False))  # foreign domain
        rows.append((rng.uniform(0.1, 0.5), 0.0, 1, False, True))  # a lower-ranked, wrong candidate
    result = fit(rows)
    calibration = Calibration(**result["calibration"])
    assert calibration.dense > 0
    assert calibration.confidence(0.75, 0.05) > calibration.threshold > calibration.confidence(0.3, 0.05)
    assert result["at_threshold"]["unanswerable_offered"] < 0.05
    assert result["at_threshold"]["precision_of_offers"] > 0.85
    assert result["questions"] == 400
