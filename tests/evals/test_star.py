"""The STAR next-best-action benchmark on a small STAR-format folder cut from the real dataset, and the
action ranker on a synthetic flow, both with the real MiniLM embeddings."""

from __future__ import annotations

import gzip
import itertools
import json
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from copilot.actionrank import (
    FREE_TEXT,
    ActionExample,
    ActionRanker,
    ActionState,
    Branch,
    EmbeddingCache,
    Event,
    Flow,
)
from copilot.errors import InvalidInput
from copilot.ports import Matrix, Vector
from evals.benchmarks import star
from knowledge.embeddings import LocalEmbedder
from tests.conftest import DATASETS

STAR = DATASETS / "star"
TASKS = ["weather", "trivia", "ride_book", "bank_balance", "plane_search", "hotel_search"]
PER_TASK = 4


@pytest.fixture(scope="module")
def star_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A STAR-format folder with a few single-task dialogues of six tasks and their flowcharts."""
    if not (STAR / "dialogues.jsonl.gz").is_file():
        pytest.skip(f"the STAR dataset is not at {STAR}")
    root = tmp_path_factory.mktemp("star")
    kept: dict[str, list[str]] = {t: [] for t in TASKS}
    with gzip.open(STAR / "dialogues.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            raw = json.loads(line)
            tasks = [w["Task"] for w in raw["Scenario"]["WizardCapabilities"]]
            picks = sum(e["Action"] == "pick_suggestion" for e in raw["Events"])
            if len(tasks) == 1 and tasks[0] in kept and len(kept[tasks[0]]) < PER_TASK and picks >= 3:
                kept[tasks[0]].append(line)
            if all(len(lines) == PER_TASK for lines in kept.values()):
                break
    with gzip.open(root / "dialogues.jsonl.gz", "wt", encoding="utf-8") as out:
        out.writelines(line for lines in kept.values() for line in lines)
    for task in TASKS:
        (root / "tasks" / task).mkdir(parents=True)
        chart = STAR / "tasks" / task / f"{task}.json"
        (root / "tasks" / task / f"{task}.json").write_text(chart.read_text(encoding="utf-8"), encoding="utf-8")
    return root


def _raw_dialogues(root: Path) -> list[dict]:
    with gzip.open(root / "dialogues.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_load_star_folder_gives_one_example_per_picked_suggestion(star_dir: Path) -> None:
    flows, dialogues = star.load(star_dir)

    assert set(flows) == set(TASKS)
    raw = _raw_dialogues(star_dir)
    picks = [[e for e in d["Events"] if e["Action"] == "pick_suggestion"] for d in raw]
    assert [len(d.examples) for d in dialogues] == [len(p) for p in picks]
    for dialogue, events in zip(dialogues, picks, strict=True):
        assert [e.label for e in dialogue.examples] == [e["ActionLabel"] for e in events]
        assert [e.text for e in dialogue.examples] == [e["Text"] for e in events]
        assert dialogue.examples[0].state.done == ()
        assert all(e.flows == (flows[dialogue.tasks[0]],) for e in dialogue.examples)


def test_states_hold_only_what_a_copilot_sees(star_dir: Path) -> None:
    _, dialogues = star.load(star_dir)

    for raw, dialogue in zip(_raw_dialogues(star_dir), dialogues, strict=True):
        customer = {e["Text"] for e in raw["Events"] if e["Action"] == "utter" and e["Agent"] == "User"}
        agent = {e["Text"] for e in raw["Events"] if e["Agent"] == "Wizard" and e["Action"] in
                 ("utter", "pick_suggestion")}
        for example in dialogue.examples:
            assert example.state.customer in customer | {""}
            assert example.state.agent in agent | {""}
            assert set(example.state.done) <= {e.label for e in dialogue.examples} | {FREE_TEXT}


def test_examples_ignore_drafts_instructions_and_label_options() -> None:
    flow = star.flow_from_chart("demo", {"replies": {"hello": "Hi!", "ask_name": "Your name?"},
                                         "graph": {"hello": "ask_name"}})
    events = [
        {"Action": "instruct", "Agent": "UserGuide", "Text": "GUIDE-MARKER"},
        {"Action": "utter", "Agent": "User", "Text": "hi there"},
        {"Action": "request_suggestions", "Agent": "Wizard", "Text": "DRAFT-MARKER"},
        {"Action": "pick_suggestion", "Agent": "Wizard", "ActionLabel": "hello", "Text": "Hi!",
         "ActionLabelOptions": ["OPTION-MARKER"]},
        {"Action": "utter", "Agent": "User", "Text": "book me"},
        {"Action": "query", "Agent": "Wizard", "Constraints": [{"RequestType": '"Check"'}]},
        {"Action": "return_item", "Agent": "KnowledgeBase", "Item": {"Message": "Found it", "Price": 3}},
        {"Action": "request_suggestions", "Agent": "Wizard", "Text": "DRAFT-MARKER 2"},
        {"Action": "pick_suggestion", "Agent": "Wizard", "ActionLabel": "ask_name", "Text": "Your name?"},
    ]

    examples = star.examples(events, (flow,))

    assert "MARKER" not in repr([e.state for e in examples])
    second = examples[1].state
    assert second == ActionState(done=("hello",), customer="book me", agent="Hi!", result="message: Found it; price: 3",
                                 result_keys=frozenset({"message", "price"}),
                                 since=(Event.CUSTOMER, Event.QUERY, Event.RESULT), query="request type: Check",
                                 call="query_check")


def test_flow_from_chart_separates_decisions_from_actions(star_dir: Path) -> None:
    flows, _ = star.load(star_dir)
    ride = flows["ride_book"]

    assert ride.start == "hello"
    assert ride.pseudo["yes"] is Branch.YES and ride.pseudo["query_check"] is Branch.CALL
    assert ride.pseudo["query_failure"] is Branch.FAILURE
    assert "ride_ask_destination" in ride.actions and "yes" not in ride.actions
    assert ride.edges["hello"] == ("ask_name",)


def test_flow_from_chart_adds_the_edges_the_chart_leaves_implied(star_dir: Path) -> None:
    ride, hotel = (star.flow_from_chart(t, json.loads((STAR / "tasks" / t / f"{t}.json").read_text()))
                   for t in ("ride_book", "hotel_book"))

    assert ride.edges["query_check"] == ("query_success", "query_failure")  # its outcomes
    assert ride.edges["ride_ask_confirm_booking"] == ("yes", "no")  # a question to its answers
    assert ride.edges["query_book"] == ("ride_confirm_booking",)  # drawn: kept as it is
    assert hotel.edges["query_check"] == ("available", "unavailable")
    assert hotel.edges["query_book"] == ("query_success", "query_failure")
    assert "ride_bye" not in ride.edges  # not a question: no answers


def test_flow_from_chart_hangs_floating_outcomes_on_the_question_they_answer(star_dir: Path) -> None:
    trivia, trip, weather = (star.flow_from_chart(t, json.loads((STAR / "tasks" / t / f"{t}.json").read_text()))
                             for t in ("trivia", "trip_directions", "weather"))

    # trivia draws the customer's answer judged after the question the query fetched; its graph leaves the
    # judgements floating
    assert trivia.edges["trivia_ask_question"] == ("correct", "incorrect", "noanswer")
    assert trivia.edges["correct"] == ("trivia_inform_answer_correct_ask_next",)  # drawn: kept
    # "done" closes a step-by-step loop: one more answer to the step's question
    assert trip.edges["trip_inform_simple_step_ask_proceed"] == ("yes", "no", "done")
    assert trivia.edges["trivia_inform_answer_correct_ask_next"] == ("done",)
    # a chart without floating outcomes is read as before
    assert weather.edges["query"] == ("weather_inform_forecast",)
    assert weather.edges["weather_inform_forecast"] == ("anything_else",)


def test_candidates_include_every_action_of_the_flowchart(star_dir: Path, embedder: LocalEmbedder) -> None:
    flows, dialogues = star.load(star_dir)
    train = [e for d in dialogues if d.tasks != ("weather",) for e in d.examples]
    ranker = ActionRanker(embedder, max_iter=20, min_flows=3, members=2).fit(train)

    ranked = ranker.rank(ActionState(), [flows["weather"]])

    labels = [r.label for r in ranked]
    assert set(flows["weather"].actions) <= set(labels)
    assert set(ranker.generic) <= set(labels)
    assert not set(flows["weather"].pseudo) & set(labels)
    assert all(0.0 <= r.score <= 1.0 for r in ranked)
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)


def test_run_with_holdout_reports_unseen_task_figures_and_baseline(star_dir: Path, embedder: LocalEmbedder) -> None:
    messages: list[str] = []

    result = star.run(star_dir, embedder, messages.append, holdout=["weather", "trivia"], members=2)

    assert result.benchmark == "star" and result.n > 0
    assert set(result.metrics) == {"top1", "top3"}
    assert all(0.0 <= v <= 1.0 for v in result.metrics.values())
    assert result.metrics["top1"] <= result.metrics["top3"]
    assert result.baseline is not None and set(result.baseline.metrics) == {"top1", "top3"}
    assert all(0.0 <= v <= 1.0 for v in result.baseline.metrics.values())
    [fold] = result.details["folds"]
    assert fold["tasks"] == ["weather", "trivia"] and fold["n"] == result.n
    assert set(result.details["per_task_top1"]) == {"weather", "trivia"}
    assert 0.0 <= result.details["unseen_targets"] <= 1.0
    assert any("fold 1" in m for m in messages)
    assert result.details["ranker_members"] == 2 and any("model 2/2 training" in m for m in messages)
    json.dumps(result.as_json())


def test_run_with_a_fold_per_task_leaves_each_task_out_once(star_dir: Path, embedder: LocalEmbedder) -> None:
    result = star.run(star_dir, embedder, lambda _: None, folds=len(TASKS), members=1)

    assert sorted(t for fold in result.details["folds"] for t in fold["tasks"]) == sorted(TASKS)
    assert all(len(fold["tasks"]) == 1 for fold in result.details["folds"])
    with pytest.raises(InvalidInput, match="folds must be between 2"):
        star.run(star_dir, embedder, print, folds=len(TASKS) + 1)


def test_run_rejects_folders_that_are_not_star(tmp_path: Path, star_dir: Path, embedder: LocalEmbedder) -> None:
    with pytest.raises(InvalidInput, match="no flowcharts"):
        star.run(tmp_path, embedder, print)
    with pytest.raises(InvalidInput, match="no such folder"):
        star.run(tmp_path / "missing", embedder, print)
    (tmp_path / "tasks" / "weather").mkdir(parents=True)
    (tmp_path / "tasks" / "weather" / "weather.json").write_text('{"replies": {}, "graph": {}}', encoding="utf-8")
    with pytest.raises(InvalidInput, match="no dialogues"):
        star.run(tmp_path, embedder, print)
    (tmp_path / "dialogues.jsonl.gz").write_bytes(gzip.compress(b'{"Events": []}\n'))
    with pytest.raises(InvalidInput, match="not in STAR format"):
        star.run(tmp_path, embedder, print)
    with pytest.raises(InvalidInput, match="unknown held-out tasks"):
        star.run(star_dir, embedder, print, holdout=["no_such_task"])


# --- the ranker on synthetic flows ---------------------------------------------------------------

WORDS = ["colour", "size", "address", "budget", "date", "seat", "meal", "pet", "parking", "floor", "view", "music",
         "speed", "brand", "model", "warranty", "insurance", "payment", "voucher", "delivery"]


def _chain_flow(name: str, rng: random.Random) -> Flow:
    """A flow of six actions in a chain; labels and templates say nothing about the order."""
    words = rng.sample(WORDS, 6)
    labels = [f"{name}_{w}" for w in words]
    replies = {label: f"Which {w} would you like?" for label, w in zip(labels, words, strict=True)}
    return Flow(name=name, replies=replies, edges={a: (b,) for a, b in itertools.pairwise(labels)}, start=labels[0])


def _chain_examples(flow: Flow, rng: random.Random) -> list[ActionExample]:
    chain = flow.order()
    out = [ActionExample(ActionState(done=tuple(chain[:i]), customer="ok"), (flow,), chain[i], flow.replies[chain[i]])
           for i in range(len(chain))]
    for _ in range(4):  # the agent jumped ahead: the flow goes on from where they are, not from the start
        i = rng.randrange(1, len(chain) - 1)
        out.append(ActionExample(ActionState(done=(chain[i],), customer="ok"), (flow,), chain[i + 1],
                                 flow.replies[chain[i + 1]]))
    return out


def test_ranker_follows_the_successors_of_an_unseen_flow(embedder: LocalEmbedder) -> None:
    rng = random.Random(0)
    train = [e for k in range(8) for e in _chain_examples(_chain_flow(f"task{k}", rng), rng)]
    ranker = ActionRanker(embedder, max_iter=60, min_flows=3, members=2).fit(train)
    unseen = _chain_flow("unseen", rng)
    chain = unseen.order()

    for done in ([chain[0]], chain[:3], [chain[3]], [chain[1], chain[4]]):
        ranked = ranker.rank(ActionState(done=tuple(done), customer="ok"), [unseen])
        assert ranked[0].label == unseen.edges[done[-1]][0], (done, ranked[:3])


def _branch_flow(name: str) -> Flow:
    """Ask, query, then one reply when the query finds something and another when it does not."""
    replies = {f"{name}_ask": f"Which {name} do you want?", f"{name}_found": f"Here is your {name}: {{item}}.",
               f"{name}_missing": f"I could not find that {name}.", "query": "Query", "query_success": "Succeeded",
               "query_failure": "Failed"}
    edges = {f"{name}_ask": ("query",), "query": ("query_success", "query_failure"),
             "query_success": (f"{name}_found",), "query_failure": (f"{name}_missing",)}
    pseudo = {"query": Branch.CALL, "query_success": Branch.SUCCESS, "query_failure": Branch.FAILURE}
    return Flow(name=name, replies=replies, edges=edges, start=f"{name}_ask", pseudo=pseudo)


def _branch_state(name: str, found: bool) -> ActionState:
    result = f"{name}: the blue one" if found else "Sorry, that is not available"
    return ActionState(done=(f"{name}_ask",), customer=f"the blue {name}", result=result, call="query",
                       since=(Event.CUSTOMER, Event.QUERY, Event.RESULT))


def test_ranker_takes_the_branch_the_query_result_chooses_in_an_unseen_flow(embedder: LocalEmbedder) -> None:
    names = ["lamp", "chair", "table", "sofa", "shelf", "desk", "rug", "bed"]
    train = [ActionExample(_branch_state(n, found), (_branch_flow(n),), f"{n}_{'found' if found else 'missing'}")
             for n in names for found in (True, False) for _ in range(3)]
    ranker = ActionRanker(embedder, max_iter=60, min_flows=3, members=2).fit(train)
    unseen = _branch_flow("mirror")

    assert ranker.rank(_branch_state("mirror", True), [unseen])[0].label == "mirror_found"
    assert ranker.rank(_branch_state("mirror", False), [unseen])[0].label == "mirror_missing"


@pytest.mark.parametrize(("option", "message"), [({"members": 0}, "members must be at least 1"),
                                                 ({"negatives": 0.0}, "negatives must be a share")])
def test_ranker_refuses_bad_options(embedder: LocalEmbedder, option: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        ActionRanker(embedder, **option)  # type: ignore[arg-type]


def test_unfitted_ranker_refuses_to_rank(embedder: LocalEmbedder) -> None:
    flow = _chain_flow("t", random.Random(1))
    with pytest.raises(InvalidInput, match="not been trained"):
        ActionRanker(embedder).rank(ActionState(), [flow])


class _CountingEmbedder:
    name = "counting"
    dimension = 4

    def __init__(self) -> None:
        self.seen: list[str] = []

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        self.seen += texts
        return np.eye(4, dtype=np.float32)[[len(t) % 4 for t in texts]]

    def embed_query(self, text: str) -> Vector:
        return self.embed_documents([text])[0]


def test_embedding_cache_embeds_each_distinct_text_once() -> None:
    inner = _CountingEmbedder()
    cache = EmbeddingCache(inner)

    first = cache.embed_documents(["a", "bb", "a", ""])
    second = cache.embed_documents(["bb", "ccc"])

    assert sorted(inner.seen) == ["a", "bb", "ccc"]
    assert first.shape == (4, 4) and not first[3].any()
    assert np.array_equal(first[1], second[0])
