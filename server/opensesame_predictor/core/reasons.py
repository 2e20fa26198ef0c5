"""One to three short readable reasons per prediction, taken from the features that pushed it up
the most (and a caution when it cannot be called yet)."""

from __future__ import annotations

from collections.abc import Mapping

from opensesame_predictor.core.features import acted_on, stem, tokens, verb_objects, words
from opensesame_predictor.core.models import Operation
from opensesame_predictor.core.params import PromptValues

# what the words say: literally, and in other words (a prompt's own words are quoted for both)
WORDS = (
    *("all", "short", "path", "opid", "summary", "description", "char", "fuzzy", "path_cover"),
    "relevance",
    *("semantic", "semantic_relative", "soft_cover", "sentence"),
)


def _matched_words(prompt: str, op: Operation) -> list[str]:
    """The prompt's own words whose stems occur in what the operation says of itself."""
    own = set(tokens(f"{op.path} {op.operation_id} {op.summary} {op.description[:300]}"))
    seen: dict[str, None] = {}
    for word in words(prompt):
        if stem(word) in own and len(word) > 2:
            seen.setdefault(word, None)
    return list(seen)[:3]


def explain(
    op: Operation,
    features: Mapping[str, float],
    notes: Mapping[str, str],
    weights: Mapping[str, float],
    prompt: str,
    values: PromptValues,
) -> list[str]:
    contributions: list[tuple[float, str]] = []
    worded = sum(weights.get(name, 0.0) * features.get(name, 0.0) for name in WORDS)
    matched = _matched_words(prompt, op)
    if matched and worded > 0:
        quoted = ", ".join(f"'{w}'" for w in matched)
        verb = "matches" if len(matched) == 1 else "match"
        contributions.append((worded, f"{quoted} {verb} {op.summary or op.path!r}"))

    def add(feature: str, text: str) -> None:
        value = sum(  # a structural feature and its share backed by the words
            weights.get(name, 0.0) * features.get(name, 0.0)
            for name in (feature, f"{feature}_backed")
        )
        if value > 0:
            contributions.append((value, text))

    if "after" in notes:
        for flow in ("consumes_last", "consumes_written"):
            add(flow, f"follows {notes['after']}, which yields {notes['fed']}")
    if "yields" in notes:
        add("yields_needed", f"yields the {notes['yields']} that {notes['for']} needs")
    if "step" in notes:
        add("in_focus", f"does what the request says to do now: {notes['step']!r}")
    if "makes" in notes:
        add("makes_new", f"makes the new {notes['makes']} the request asks for")
    names = values.quoted + values.names
    if names:
        add("search_for_name", f"looks up {names[0]!r} by name first")
    add("linked", "an OpenAPI link of an earlier response points here")
    add("crud_next", "continues the lifecycle of the resource just created or listed")
    add("method_match", f"the request asks for a {op.method}")
    acted = verb_objects(prompt) & acted_on(op.path)
    if acted:
        word = next((w for w in words(prompt) if stem(w) in acted), min(acted))
        add("acts_on", f"its path ends in the {word!r} the request acts on")
    add("same_resource", "stays on the resource of the last call")
    add("repeat_asked", "the request asks for the last call again")
    contributions.sort(key=lambda item: -item[0])
    cautions = []
    if features.get("missing_id", 0.0) > 0 or features.get("missing_field", 0.0) > 0:
        cautions.append("needs an id that no earlier call or the prompt has supplied yet")
    if features.get("called", 0.0) > 0:
        cautions.append("already called earlier")
    if op.deprecated:
        cautions.append("deprecated")
    # three reasons at most; a caution outweighs a third reason for the call
    reasons = [text for _, text in contributions[: max(1, 3 - len(cautions))]] + cautions
    if not reasons:  # ranked this low only because better matches are scarce
        reasons.append("weak evidence: nothing in the prompt or the history points here")
    return reasons[:3]
