"""Next-best actions: the playbook that applies, its steps done so far, what to do next, and when to move
the thread off messaging.

The playbook is the one whose trigger intents hold the classifier's confident intent, else the one most
similar to the customer's turns (none under a threshold). A step is done when an agent, bot or system
message carries one of its cues (or a close paraphrase of one), or when the console reports it; a step the
agent asked the customer for ("Please reply with the 6-digit code") waits until the customer answers. The
next steps are the remaining ones whose preconditions are all done, with the steps still blocked named
beside them ("verify identity first"). Escalation and channel-switch advice comes from the playbook's
``escalate_when`` conditions and from the customer's sentiment, urgency and the length of the thread. When
the tenant has labelled history, what agents did next in the most similar past threads joins them
(``copilot.history``, merged by ``copilot.learned``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from copilot.conversation import Role, Thread, turns
from copilot.errors import InvalidInput
from copilot.extract import sentences
from copilot.history import ActionHistory
from copilot.intents import UNKNOWN, IntentClassifier
from copilot.learned import done_labels, with_learned
from copilot.nextaction_contract import DoneStep, EscalationAdvice, NextAction, NextActions, PlaybookProgress
from copilot.playbooks import Playbook, Step
from copilot.ports import Embedder, Matrix
from copilot.sentiment import assess

# Cosine similarity (all-MiniLM-L6-v2) between the customer's turns and a playbook's name, description and
# trigger intents, under which no playbook is chosen. On the sample threads the right playbook scores 0.38
# (outage, first turn) to 0.60, order tracking and roaming (no playbook) 0.31, small talk under 0.1. On the
# single messages of samples/brightwave/intents.csv, 0.35 picks the right playbook for 61 of 84 messages of
# trigger intents (2 wrong) and one for 25 of 134 off-playbook messages, mostly neighbours (a bill question
# read as a refund); 0.40 misses outage openings. A trained intent classifier is the surer route.
PLAYBOOK_MIN_SIMILARITY = 0.35
# A sentence of an agent, bot or system message whose similarity to a step's cue reaches this counts as the
# cue. In the sample threads, paraphrases of cues score 0.67 and 0.71 ("Please choose a password you don't use
# anywhere else" to "never ask for your password"); other sentences reach 0.64 ("I've sent a one-time code" to
# "Send a new code" of the 2-step help), and up to 0.81 when they announce a step instead of doing it ("To send
# you a replacement SIM, I need to check it's you" to "replacement SIM is on its way"): _ANNOUNCES drops those.
CUE_MIN_SIMILARITY = 0.66
# A customer sentence whose similarity to one of the playbook's escalate_when conditions reaches this
# matches it. In the sample threads customer sentences reach 0.58 against conditions that do not hold ("cant
# log in it says account locked" to "account PIN locked and customer needs an urgent SIM swap"); of 23
# paraphrases written for the conditions, 9 reach 0.62 ("somebody has changed the sign in email" 0.87). Limits
# in numbers ("amount over 200", "longer than 72 hours") are beyond an embedding: the agent checks those.
CONDITION_MIN_SIMILARITY = 0.62
STRONGLY_NEGATIVE = -0.5  # VADER compound of a turn that reads angry: "absolutely useless", "sort it out!!"
WORSENING_DROP = 0.6  # fall of the compound from the first customer turn to the latest one
LONG_THREAD_TURNS = 8  # customer turns without resolution after which the issue counts as complex
RECENT_TURNS = 2  # the customer turns that sentiment and urgency rules read: the mood now, not at the start
# The SVM's decision value an intent needs when the classifier has no calibrated unknown threshold: above 0
# its one-vs-rest classifier says yes. A calibrated classifier answers "unknown" itself.
INTENT_CONFIDENT = 0.0

# A request that needs the customer's answer: the step it belongs to waits for it. "Please choose a password"
# asks for no answer.
_REQUEST = re.compile(r"\?\s*$|\b(please (reply|enter|confirm|share|send|tell)|reply with|let me know|could you|"
                      r"can you|would you)\b", re.I)
# A sentence that announces or negates a step instead of doing it: no paraphrase match.
_ANNOUNCES = re.compile(r"\b(need(s)? to|will|going to|can'?t|cannot|won'?t|before I|to send you)\b", re.I)
_ASKS_FOR_PERSON = re.compile(
    r"\b(speak|talk) to (a |an |the |your )?(real |actual )?(person|human|someone|manager|supervisor|agent)\b|"
    r"\b(call|ring|phone) me\b|\bgive me a (call|ring)\b|\bphone number\b", re.I)
_NEEDS = re.compile(r"\b(need|needs|must|have to|has to|got to|gotta|before|by)\b", re.I)
_TIME_CRITICAL = ("asks for speed", "an emergency", "a deadline")
_ANGRY = ("has waited", "threatens to leave or complain")
_CUE_WORDS = {"an emergency": "has an emergency", "a deadline": "has a deadline"}

@dataclass(frozen=True)
class _Vectors:
    """A playbook's texts, embedded once."""

    profile: Matrix  # 1 row: name, description and trigger intents
    cues: Matrix  # one row per cue (a step with no cues: its title)
    cue_step: list[int]  # the step of each cue row
    conditions: Matrix  # one row per escalate_when condition


@dataclass
class _Found:
    """What the thread shows of one step."""

    done: DoneStep | None = None
    asked: str = ""  # the request to the customer, while it waits for an answer


class NextActionEngine:
    """Recommends a thread's next playbook steps and escalation advice from a tenant's playbooks, and learned
    actions from its labelled history."""

    def __init__(self, playbooks: Sequence[Playbook], embedder: Embedder, *,
                 intents: IntentClassifier | None = None, history: ActionHistory | None = None) -> None:
        self.playbooks = list(playbooks)
        self.embedder = embedder
        self.intents = intents
        self.history = history
        self._vectors = [self._embed(p) for p in self.playbooks]

    def _embed(self, playbook: Playbook) -> _Vectors:
        intents = " ".join(i.replace("_", " ") for i in playbook.trigger_intents)
        cues = [(i, cue) for i, step in enumerate(playbook.steps) for cue in (step.cues or [step.title or step.action])]
        embed = self.embedder.embed_documents
        return _Vectors(profile=embed([f"{playbook.name}. {playbook.description} {intents}".strip()]),
                        cues=embed([c for _, c in cues]), cue_step=[i for i, _ in cues],
                        conditions=embed(playbook.escalate_when))

    def recommend(self, thread: Thread, *, done_actions: Sequence[str] = (), n: int = 3) -> NextActions:
        """The next steps and advice for ``thread``.

        Args:
            thread: the conversation so far.
            done_actions: step ids or actions the console reports done; an action marks one step with it
                that is not done yet, a ready one before a blocked one, earliest first.
            n: the most actions to return.
        """
        if n < 1:
            raise InvalidInput(f"n must be at least 1, not {n}")
        customer = [t.text for t in turns(thread) if t.role == Role.CUSTOMER]
        chosen, matched_by, score, intent = self._choose(customer)
        progress: PlaybookProgress | None = None
        steps: list[NextAction] = []
        if chosen is not None:
            playbook, vectors = self.playbooks[chosen], self._vectors[chosen]
            found = self._progress(playbook, vectors, thread, done_actions)
            progress = PlaybookProgress(
                playbook_id=playbook.id, name=playbook.name, matched_by=matched_by, score=round(score, 3),
                done=[f.done for f in found if f.done is not None],
                awaiting_customer=[s.id for s, f in zip(playbook.steps, found, strict=True) if f.asked],
                remaining=[s.id for s, f in zip(playbook.steps, found, strict=True) if f.done is None])
            confidence = 0.9 if matched_by == "intent" else min(0.9, 0.5 + 2 * (score - PLAYBOOK_MIN_SIMILARITY))
            steps = self._next_steps(playbook, found, confidence)
        advice = self._advice(thread, chosen, progress)
        applies = self.playbooks[chosen] if chosen is not None else None
        actions = steps + _as_actions(advice, applies)
        if self.history is not None:
            learned = self.history.recommend(thread, done=done_labels(applies, progress, done_actions), n=n)
            actions = with_learned(actions, learned, self.playbooks)
        actions.sort(key=lambda a: -a.confidence)
        return NextActions(actions=_pick(actions, n), playbook=progress, escalation=advice, intent=intent)

    # -- which playbook ------------------------------------------------------------------------------------------

    def _choose(self, customer: list[str]) -> tuple[int | None, Literal["intent", "similarity"], float, str | None]:
        if not customer or not self.playbooks:
            return None, "similarity", 0.0, None
        # the model reads the first 256 word pieces: the opening turns, which say what the thread is about
        query = self.embedder.embed_documents([" ".join(customer)])[0]
        similarity = np.array([float(v.profile[0] @ query) for v in self._vectors])
        intent: str | None = None
        if self.intents is not None:
            calibrated = self.intents.unknown_below is not None
            # the first turn whose intent has a playbook: later turns are often answers ("code is 590317")
            for prediction in self.intents.predict(customer):
                if prediction.intent == UNKNOWN or (not calibrated and prediction.score < INTENT_CONFIDENT):
                    continue
                intent = intent or prediction.intent
                matching = [i for i, p in enumerate(self.playbooks) if prediction.intent in p.trigger_intents]
                if matching:  # several playbooks for one intent: the closer one
                    best = max(matching, key=lambda i: similarity[i])
                    return best, "intent", prediction.score, prediction.intent
        best = int(similarity.argmax())
        found = best if similarity[best] >= PLAYBOOK_MIN_SIMILARITY else None
        return found, "similarity", float(similarity[best]), intent

    # -- which steps are done ------------------------------------------------------------------------------------

    def _progress(self, playbook: Playbook, vectors: _Vectors, thread: Thread,
                  done_actions: Sequence[str]) -> list[_Found]:
        found = [_Found() for _ in playbook.steps]
        spoken = [(i, s) for i, m in enumerate(thread.messages) if m.role != Role.CUSTOMER for s in sentences(m.text)]
        similar = (self.embedder.embed_documents([s for _, s in spoken]) @ vectors.cues.T if spoken
                   else np.zeros((0, len(vectors.cue_step)), dtype=np.float32))
        answered_after = max((i for i, m in enumerate(thread.messages) if m.role == Role.CUSTOMER), default=-1)
        by_message: dict[int, list[int]] = {}
        for row, (index, _) in enumerate(spoken):
            by_message.setdefault(index, []).append(row)
        for index, rows in by_message.items():
            evidence: dict[int, tuple[str, Literal["cue", "similarity"]]] = {}
            asked: dict[int, str] = {}
            last_matched: list[int] = []
            for row in rows:
                sentence = spoken[row][1]
                matched = self._matches(playbook, vectors, sentence, similar[row])
                for step, how in matched.items():
                    evidence.setdefault(step, (sentence, how))
                if _REQUEST.search(sentence):  # the request belongs to the step it follows
                    for step in matched or last_matched:
                        asked[step] = sentence
                last_matched = list(matched) or last_matched
            for step, (sentence, how) in evidence.items():
                if found[step].done is not None:
                    continue
                if step in asked and index > answered_after:  # the customer has not answered yet
                    found[step].asked = asked[step]
                    continue
                found[step] = _Found(done=DoneStep(step_id=playbook.steps[step].id, evidence=sentence,
                                                   message_index=index, matched_by=how))
        _apply_console(playbook, found, done_actions)
        return found

    @staticmethod
    def _matches(playbook: Playbook, vectors: _Vectors, sentence: str,
                 similar: np.ndarray) -> dict[int, Literal["cue", "similarity"]]:
        matched: dict[int, Literal["cue", "similarity"]] = {
            i: "cue" for i, step in enumerate(playbook.steps) if any(_has_cue(sentence, c) for c in step.cues)}
        if not _ANNOUNCES.search(sentence):
            for row, score in enumerate(similar):
                if score >= CUE_MIN_SIMILARITY:
                    matched.setdefault(vectors.cue_step[row], "similarity")
        return matched

    # -- what next -----------------------------------------------------------------------------------------------

    @staticmethod
    def _next_steps(playbook: Playbook, found: list[_Found], confidence: float) -> list[NextAction]:
        """The remaining steps in the order to do them: those waiting on the customer's answer, then those
        ready (preconditions done), then the blocked ones, each group in playbook order."""
        done = {s.id for s, f in zip(playbook.steps, found, strict=True) if f.done is not None}
        titles = {s.id: s.title or s.id for s in playbook.steps}
        actions: list[NextAction] = []
        ready = blocked = 0
        for step, state in zip(playbook.steps, found, strict=True):
            if state.done is not None:
                continue
            blockers = [titles[p] for p in _undone_preconditions(playbook, step, done)]
            if state.asked:
                score = 1.0
                reason = f'Waiting on the customer\'s answer to "{_clip(state.asked)}" Complete this step when ' \
                         "they answer."
            elif not blockers:
                score, ready = max(0.5, 0.9 - 0.1 * ready), ready + 1
                reason = _ready_reason(step, [titles[p] for p in step.preconditions])
            else:
                score, blocked = max(0.2, 0.45 - 0.05 * blocked), blocked + 1
                them = "it" if len(blockers) == 1 else "them"
                reason = f"First: {'; '.join(blockers)}. The playbook requires {them} before this step."
            actions.append(NextAction(
                playbook_id=playbook.id, step_id=step.id, action=step.action, title=step.title or step.action,
                reason=reason, preconditions_met=not blockers, blocked_by=blockers, kind="playbook_step",
                confidence=round(confidence * score, 3)))
        return sorted(actions, key=lambda a: -a.confidence)

    # -- escalation and channel switch ---------------------------------------------------------------------------

    def _advice(self, thread: Thread, chosen: int | None, progress: PlaybookProgress | None) -> list[EscalationAdvice]:
        customer = [(i, m.text) for i, m in enumerate(thread.messages) if m.role == Role.CUSTOMER and m.text.strip()]
        customer_turns = [t.text for t in turns(thread) if t.role == Role.CUSTOMER]
        if not customer:
            return []
        advice = _mood_advice(customer_turns, customer)
        if chosen is not None:
            advice += self._conditions(self.playbooks[chosen], self._vectors[chosen], customer)
        still_open = progress is None or bool(progress.remaining)
        if (len(customer_turns) >= LONG_THREAD_TURNS and still_open
                and assess(customer_turns[-1]).label != "positive"):
            still = f"{len(progress.remaining)} playbook steps are open" if progress else "no playbook covers it"
            advice.append(EscalationAdvice(
                kind="escalation", target="specialist", trigger="long_thread", message_index=None, confidence=0.5,
                evidence=f"{len(customer_turns)} customer turns",
                reason=f"Complex: the customer has written {len(customer_turns)} times without a resolution and "
                       f"{still}. Hand the thread to a specialist."))
        return sorted(advice, key=lambda a: -a.confidence)

    def _conditions(self, playbook: Playbook, vectors: _Vectors,
                    customer: list[tuple[int, str]]) -> list[EscalationAdvice]:
        if not playbook.escalate_when:
            return []
        said = [(i, s) for i, text in customer for s in sentences(text)]
        scores = self.embedder.embed_documents([s for _, s in said]) @ vectors.conditions.T
        advice = []
        for c, condition in enumerate(playbook.escalate_when):
            row = int(scores[:, c].argmax())
            score = float(scores[row, c])
            if score < CONDITION_MIN_SIMILARITY:
                continue
            index, sentence = said[row]
            advice.append(EscalationAdvice(
                kind="escalation", target="specialist", trigger="playbook_condition",
                reason=f'The playbook "{playbook.name}" says to escalate when "{condition}": the customer wrote '
                       f'"{_clip(sentence)}" (similarity {score:.2f}).',
                evidence=sentence, message_index=index, confidence=round(min(1.0, 0.45 + score / 2), 3)))
        return advice


# -- rules over the customer's mood -------------------------------------------------------------------------------


def _mood_advice(customer_turns: list[str], customer: list[tuple[int, str]]) -> list[EscalationAdvice]:
    """Advice from the customer's latest turns: asks for a person, time-critical, complains, upset, worsening."""
    moods = [assess(t) for t in customer_turns]
    recent = list(zip(customer_turns, moods, strict=True))[-RECENT_TURNS:]
    said = [(i, s) for i, text in customer for s in sentences(text)]
    recent_said = [(i, s) for i, s in said if any(s in t for t, _ in recent)]
    advice: list[EscalationAdvice] = []

    person = next(((i, s, m) for i, s in reversed(recent_said) if (m := _ASKS_FOR_PERSON.search(s))), None)
    if person is not None:
        index, sentence, match = person
        manager = re.search(r"manager|supervisor", match.group(0), re.I) is not None
        advice.append(EscalationAdvice(
            kind="escalation" if manager else "channel_switch", target="supervisor" if manager else "voice",
            trigger="asks_for_person", evidence=sentence, message_index=index, confidence=0.9,
            reason=f'The customer asks for {"a manager" if manager else "a person or a call"}: "{_clip(sentence)}". '
                   + ("Offer a supervisor." if manager else "Offer to call them.")))

    time_critical = _cue_sentence(recent_said, _TIME_CRITICAL)
    if time_critical is not None:
        index, sentence, cue, urgency = time_critical
        advice.append(EscalationAdvice(
            kind="channel_switch", target="voice", trigger="time_critical", evidence=sentence, message_index=index,
            reason=f'Time-critical: the customer {_CUE_WORDS.get(cue, cue)}: "{_clip(sentence)}". Messaging is too '
                   "slow for this; move the thread to a call.",
            confidence=round(min(1.0, 0.55 + urgency / 2), 3)))
    angry = _cue_sentence(recent_said, _ANGRY)
    if angry is not None:
        index, sentence, cue, urgency = angry
        advice.append(EscalationAdvice(
            kind="escalation", target="supervisor", trigger="complaint", evidence=sentence, message_index=index,
            reason=f'The customer {_CUE_WORDS.get(cue, cue)}: "{_clip(sentence)}". Offer a supervisor.',
            confidence=round(min(1.0, 0.5 + urgency / 2), 3)))

    worst_text, worst = min(recent, key=lambda tm: tm[1].sentiment)
    if worst.sentiment <= STRONGLY_NEGATIVE:
        sentence = _most_negative_sentence(worst_text)
        advice.append(EscalationAdvice(
            kind="channel_switch", target="voice", trigger="negative_sentiment", evidence=sentence,
            message_index=_message_of(customer, sentence),
            reason=f'The customer is upset (sentiment {worst.sentiment:+.2f}): "{_clip(sentence)}". Offer to '
                   "continue on a call, or a supervisor if they prefer.",
            confidence=round(min(1.0, 0.25 - worst.sentiment / 2), 3)))
    drop = moods[0].sentiment - moods[-1].sentiment if moods else 0.0
    if len(moods) >= 3 and drop >= WORSENING_DROP and moods[-1].label == "negative":
        latest = sentences(customer_turns[-1])[-1]
        advice.append(EscalationAdvice(
            kind="escalation", target="supervisor", trigger="worsening_sentiment", evidence=customer_turns[-1],
            message_index=_message_of(customer, latest),
            reason=f"The customer's mood has worsened over {len(moods)} turns, from {moods[0].sentiment:+.2f} to "
                   f'{moods[-1].sentiment:+.2f}: now "{_clip(customer_turns[-1])}". Offer a supervisor.',
            confidence=round(min(1.0, 0.4 + drop / 4), 3)))
    return advice


def _cue_sentence(said: list[tuple[int, str]], cues: tuple[str, ...]) -> tuple[int, str, str, float] | None:
    """The latest customer sentence with one of ``cues``, the cue, and the sentence's urgency."""
    for index, sentence in reversed(said):
        mood = assess(sentence)
        # "today" alone is a greeting ("how are you today"): a deadline counts when something is needed by it
        found = [c for c in mood.cues if c != "a deadline" or _NEEDS.search(sentence)]
        hit = next((c for c in found if c in cues), None)
        if hit is not None:
            return index, sentence, hit, mood.urgency
    return None


def _most_negative_sentence(text: str) -> str:
    return min(sentences(text) or [text], key=lambda s: assess(s).sentiment)


def _message_of(customer: list[tuple[int, str]], sentence: str) -> int | None:
    return next((i for i, text in reversed(customer) if sentence in text), None)


def _as_actions(advice: list[EscalationAdvice], playbook: Playbook | None) -> list[NextAction]:
    """One action per kind of advice, from its strongest evidence."""
    titles = {"voice": ("move_to_voice", "Offer to continue on a call"),
              "supervisor": ("escalate_to_supervisor", "Offer a supervisor"),
              "specialist": ("escalate_to_specialist", "Hand over to a specialist")}
    actions: dict[str, NextAction] = {}
    for item in advice:  # strongest first
        action, title = titles[item.target]
        if action in actions:
            continue
        actions[action] = NextAction(
            playbook_id=playbook.id if playbook is not None and item.trigger == "playbook_condition" else None,
            step_id=None, action=action, title=title, reason=item.reason, preconditions_met=True, blocked_by=[],
            kind=item.kind, confidence=item.confidence)
    return list(actions.values())


def _pick(actions: list[NextAction], n: int) -> list[NextAction]:
    """The ``n`` best, keeping the last place for the first blocked step: the agent sees what waits on what."""
    best = actions[:n]
    blocked = next((a for a in actions if a.kind == "playbook_step" and not a.preconditions_met), None)
    steps = [a for a in best if a.kind == "playbook_step"]
    if blocked is None or blocked in best or len(steps) < 2 or best[-1] is not steps[-1]:
        return best  # never at the cost of the first step or of escalation advice
    return [*best[:-1], blocked]


def _apply_console(playbook: Playbook, found: list[_Found], done_actions: Sequence[str]) -> None:
    """Mark the steps the console reports: by id, or by action (the first step with it not done, a ready one
    before a blocked one: several steps share actions such as inform_customer)."""
    for reported in done_actions:
        done = {s.id for s, f in zip(playbook.steps, found, strict=True) if f.done is not None}
        by_id = [i for i, s in enumerate(playbook.steps) if s.id == reported]
        by_action = sorted((i for i, s in enumerate(playbook.steps) if s.action == reported and s.id not in done),
                           key=lambda i: (bool(_undone_preconditions(playbook, playbook.steps[i], done)), i))
        for i in by_id or by_action[:1]:
            found[i] = _Found(done=DoneStep(step_id=playbook.steps[i].id, evidence=f"reported by the console: "
                                            f"{reported}", message_index=None, matched_by="console"))


def _has_cue(sentence: str, cue: str) -> bool:
    # Cues in capitals are codes ("PAC", "STATUS", "RT-"): matched as written, or "PAC" would match "package"
    # and "STATUS" the status page's address. Other cues match case-insensitively, anywhere.
    if cue.upper() == cue and any(c.isalpha() for c in cue):
        return re.search(rf"(?<![A-Za-z]){re.escape(cue)}", sentence) is not None
    return cue.lower() in sentence.lower()


def _undone_preconditions(playbook: Playbook, step: Step, done: set[str]) -> list[str]:
    """The step's preconditions not done, and theirs, in playbook order."""
    needed: set[str] = set()
    stack = [p for p in step.preconditions if p not in done]
    by_id = {s.id: s for s in playbook.steps}
    while stack:
        step_id = stack.pop()
        if step_id not in needed:
            needed.add(step_id)
            stack += [p for p in by_id[step_id].preconditions if p not in done]
    return [s.id for s in playbook.steps if s.id in needed]


def _ready_reason(step: Step, preconditions: list[str]) -> str:
    first = sentences(step.description)[:1]
    what = first[0] if first else step.title
    if not preconditions:
        return f"Next in the playbook, with nothing to do before it. {what}"
    return f"Its preconditions are done ({'; '.join(preconditions)}). {what}"


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
