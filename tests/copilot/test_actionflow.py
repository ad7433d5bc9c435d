"""Where a thread stands among several flows: the features ``copilot.actionflow.flow_progress`` and
``flow_affinity`` give."""

from __future__ import annotations

import itertools

import numpy as np

from copilot.actionflow import ActionState, Flow, FlowCandidates, flow_affinity, flow_progress


def _flow(name: str, steps: list[str]) -> Flow:
    replies = {"hello": "Hello", **{s: f"{s}?" for s in steps}}
    order = ["hello", *steps]
    return Flow(name=name, replies=replies, edges={a: (b,) for a, b in itertools.pairwise(order)},
                start="hello")


WEATHER = _flow("weather", ["w_day", "w_place", "w_forecast"])
PARTY = _flow("party", ["p_venue", "p_day", "p_guests"])


def _features(done: tuple[str, ...]) -> dict[str, dict[str, float]]:
    cands = FlowCandidates([WEATHER, PARTY], {"bye": "Goodbye"})
    started, current, first, single = flow_progress(cands, [ActionState(done=done)])
    return {name: dict(zip(cands.labels, values[0].tolist(), strict=True))
            for name, values in (("started", started), ("current", current), ("first", first), ("single", single))}


def test_a_thread_in_its_first_flow_marks_that_flow_started_and_current() -> None:
    f = _features(("hello", "w_day", "w_place"))

    assert f["started"]["w_forecast"] == 1.0 and f["started"]["p_venue"] == 0.0
    assert f["current"]["w_forecast"] == 1.0 and f["current"]["p_day"] == 0.0
    # each flow's first step not done yet; "hello" belongs to both flows, so it starts neither
    assert [label for label, v in f["first"].items() if v] == ["p_venue", "w_forecast"]
    assert f["started"]["bye"] == 0.0 and f["first"]["bye"] == 0.0  # generic: of no flow
    assert set(f["single"].values()) == {0.0}


def test_the_last_flow_acted_in_is_current_after_a_switch() -> None:
    f = _features(("hello", "w_day", "w_place", "w_forecast", "p_venue"))

    assert f["started"]["w_day"] == 1.0 and f["started"]["p_guests"] == 1.0
    assert f["current"]["p_guests"] == 1.0 and f["current"]["w_day"] == 0.0
    assert [label for label, v in f["first"].items() if v] == ["p_day"]  # the weather flow is all done


def test_one_flow_is_marked_single() -> None:
    cands = FlowCandidates([WEATHER], {})
    single = flow_progress(cands, [ActionState(done=("hello",))])[3]

    assert np.all(single == 1.0)


def test_flow_affinity_measures_each_flow_against_the_one_the_turn_fits_best() -> None:
    cands = FlowCandidates([WEATHER, PARTY], {"bye": "Goodbye"})
    column = {label: j for j, label in enumerate(cands.labels)}
    fit = np.zeros((2, len(cands.labels)), dtype=np.float32)
    # state 0: the turn reads as the party (its best template 0.7, the weather's 0.4); state 1: the reverse
    fit[0, [column["p_day"], column["w_place"], column["bye"]]] = (0.7, 0.4, 0.9)
    fit[1, [column["p_guests"], column["w_forecast"]]] = (0.2, 0.5)

    affinity = dict(zip(cands.labels, flow_affinity(cands, fit).T.tolist(), strict=True))

    assert np.allclose(affinity["p_venue"], [0.0, -0.3])  # a flow scores its best template
    assert affinity["p_guests"] == affinity["p_venue"]
    assert np.allclose(affinity["w_day"], [-0.3, 0.0])
    assert affinity["bye"] == [-1.0, -1.0]  # generic: of no flow, whatever its own fit
    assert affinity["hello"] == [0.0, 0.0]  # of both flows: the better one counts


def test_flow_affinity_without_flow_actions_marks_every_candidate_of_no_flow() -> None:
    for cands in (FlowCandidates([], {"bye": "Goodbye"}),
                  FlowCandidates([Flow(name="empty", replies={}, edges={}, start="")], {"bye": "Goodbye"})):
        fit = np.full((3, len(cands.labels)), 0.5, dtype=np.float32)

        assert np.array_equal(flow_affinity(cands, fit), np.full(fit.shape, -1.0, dtype=np.float32))
