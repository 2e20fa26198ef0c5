"""How people word a request for an operation, for the synthetic training data: the words they
draw on (a summary, a description, a parameter's description, the API's name), the values they
give, and the talk around it.

Real requests rarely copy a summary. They describe a goal in a sentence or three, name the
values the call takes ("holidays in Japan", "the airport EDDF"), and carry words that match
nothing. Everything here is generic English, never the wording of an evaluation set.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from opensesame_predictor.core.features import STOPWORDS, path_words, words
from opensesame_predictor.core.history import OPAQUE, opaque
from opensesame_predictor.core.models import Operation, Parameter

# What people say for what each kind of call does; the operation's own verb is used too.
VERBS: dict[str, tuple[str, ...]] = {
    "GET": ("get", "show me", "find", "what is", "give me", "look up", "tell me", "check"),
    "LIST": ("list", "show all", "what are", "give me the", "find all", "which are", "get"),
    "POST": ("create", "add", "make", "start", "set up", "submit", "send", "new"),
    "PUT": ("update", "change", "edit", "set", "modify", "replace"),
    "PATCH": ("update", "change", "edit", "rename", "adjust"),
    "DELETE": ("delete", "remove", "get rid of", "cancel", "drop", "clear"),
}
# Leading words of summaries that only say which method it is.
METHOD_WORDS = frozenset(
    """get gets list lists retrieve retrieves return returns fetch fetches read reads show
    shows create creates add adds update updates delete deletes remove removes find finds
    obtain obtains query queries""".split()
)
OPENERS = (
    "", "", "", "", "please", "can you", "could you", "I want to", "I'd like to", "I need to",
    "help me", "hey, can you", "hi, could you", "I'm trying to", "is it possible to",
    "would you", "let's", "go ahead and", "I have to", "we need to",
)  # fmt: skip
# Circumstances people add; they point at no operation in particular.
CONTEXTS = (
    "I'm working on a side project.", "This is for a report I'm writing.",
    "My manager asked me about this.", "I'm preparing a presentation for tomorrow.",
    "We're reviewing our setup this week.", "Just curious.", "It's for a school assignment.",
    "I'm planning something for the weekend.", "A friend asked me and I had no idea.",
    "I'm new to this service.", "Thanks in advance!", "It's a bit urgent.",
    "Something went wrong earlier today.", "I want to double-check before the meeting.",
    "Our team is migrating next month.", "I promised to send this to a colleague.",
    "Keep it short, please.", "I'm building a dashboard for my team.",
    "I only have a few minutes.", "I'd appreciate the details.",
)  # fmt: skip
FIRST = ("Ana", "Liam", "Sofia", "Kenji", "Maya", "Omar", "Elena", "Noah", "Priya", "Jonas")
LAST = ("Ruiz", "Okafor", "Lindqvist", "Tanaka", "Moreau", "Haddad", "Novak", "Reyes")
TITLES = ("Blue Horizon", "Night Garden", "Silver Lake", "Paper Moon", "Red Canyon", "Echo Park")
# Values by what a parameter's name says it holds: the natural keys people give directly.
VALUES: dict[str, tuple[str, ...]] = {
    "country": ("Japan", "Germany", "Brazil", "Canada", "Kenya", "France", "US", "DE"),
    "city": ("Lisbon", "Osaka", "Denver", "Nairobi", "Toronto", "Krakow"),
    "language": ("French", "Spanish", "German", "en", "pt"),
    "currency": ("USD", "EUR", "JPY", "GBP", "CHF"),
    "date": ("2023-05-01", "March 3rd", "next Monday", "2022-11-20", "yesterday"),
    "year": ("2019", "2021", "2024", "1999"),
    "month": ("May", "November", "03"),
    "time": ("10:30", "noon", "8 pm"),
    "email": ("ana.ruiz@example.com", "ops@example.org", "kenji@example.net"),
    "color": ("red", "teal", "golden", "black"),
    "size": ("small", "large", "medium"),
    "symbol": ("AAPL", "TSLA", "BTC", "XAU"),
    "code": ("X7Q2", "LHR", "B12", "KX-4"),
    "url": ("https://example.com/page", "example.org/docs"),
    "domain": ("example.org", "shop.example.com"),
    "ip": ("203.0.113.7", "198.51.100.23"),
    "phone": ("+1 555 0100", "+44 20 7946 0958"),
    "status": ("active", "pending", "closed"),
    "type": ("public", "basic", "premium"),
    "category": ("music", "sports", "science", "travel"),
    "tag": ("urgent", "beta", "holiday"),
    "version": ("v2", "1.4.0", "latest"),
    "number": ("42", "7", "318"),
    "amount": ("250", "19.99", "1000"),
}
SYNONYMS = {
    "lang": "language", "locale": "language", "colour": "color", "ccy": "currency",
    "from": "date", "to": "date", "start": "date", "end": "date", "since": "date",
    "until": "date", "day": "date", "birthday": "date", "ticker": "symbol",
    "uri": "url", "link": "url", "website": "url", "host": "domain", "hostname": "domain",
    "mail": "email", "kind": "type", "genre": "category", "topic": "category",
    "state": "status", "limit": "number", "count": "number", "page": "number",
    "quantity": "number", "price": "amount", "value": "amount", "region": "country",
    "nationality": "country", "airport": "code", "icao": "code", "iata": "code", "zip": "code",
    "postal": "code", "isbn": "code", "sku": "code",
}  # fmt: skip


@dataclass(frozen=True)
class Wording:
    """How far synthetic requests stray from their operations' own words."""

    # Chance that a word taken from the operation's text is said in other words (when it has
    # close neighbours in meaning). Real requests share 21-40 % of their words with their
    # operation's text (30 % on average over the shared evaluation sets); the generator
    # shares 37 % without rewording, 30 % with 0.8.
    reworded: float = 0.8
    # ... for the API's own terms (words only one of its operations uses), which a newcomer
    # knows least; and the chance such a term, with nothing close in meaning, is left out.
    terms_reworded: float = 0.8
    terms_dropped: float = 0.0
    # Weight of the fields a call returns (or takes) among the texts a request draws on:
    # people ask for the things they want ("the distance and last update of my car").
    asked: float = 0.0
    distracted: float = 0.4  # share of requests that also mention another operation's things


# What the word vectors and the sentence models are fitted on (`make vectors`, `make encoder`).
PLAIN = Wording()
# Requests as far from their operation's words as people's: one-call requests find their gold
# first by words 27 % of the time (PLAIN: 41 %, people's: 24 %; `offline.gap`). Tried for the
# ranker's cases, alone and in turn with PLAIN, and for the sentence models' tuning; none passed
# its check (README, "Tried").
HARD = Wording(terms_reworded=1.0, terms_dropped=0.5, asked=4.0, distracted=0.8)
# HARD's asking for what a call returns alone, the API's own terms said as PLAIN says them: half
# way from PLAIN to people's by words and by meaning. Tried for the ranker's cases; did not pass.
ASKED = Wording(asked=4.0)
# How `train --wording` words the ranker's cases, round by round.
WORDINGS: dict[str, tuple[Wording, ...]] = {
    "plain": (PLAIN,),
    "hard": (HARD,),
    "alternate": (PLAIN, HARD),
    "asked": (ASKED,),
}
# Without rewording, which draws on the word vectors: for the texts they are refitted on.
LITERAL = Wording(reworded=0.0, terms_reworded=0.0)
ENVELOPE = frozenset(
    """data results items item paging meta links link error errors success total count next
    previous prev page pages id href self object response result message code status""".split()
)
NAMED = frozenset({"q", "query", "search", "term", "keyword", "keywords", "name", "title", "text"})
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)])[.!?](?:\s|$)")


def sentence(text: str) -> str:
    """The first sentence of a description, without markup."""
    plain = re.sub(r"<[^>]{0,200}>|\[([^\]]{0,200})\]\([^)]{0,300}\)|[`*_#]", r" \1 ", text)
    found = _SENTENCE_END.search(plain)
    return (plain[: found.start()] if found else plain)[:300]


def entity(rng: random.Random) -> str:
    """A name of a thing that exists: a person or a title, sometimes quoted."""
    if rng.random() < 0.5:
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    title = rng.choice(TITLES)
    return f'"{title}"' if rng.random() < 0.3 else title


def is_opaque(param: Parameter) -> bool:
    return opaque(param.name)


def value_for(param: Parameter, rng: random.Random, known_opaque: bool = False) -> str:
    """A value a person would give for a parameter (an id for an opaque one)."""
    if param.enum and rng.random() < 0.8:
        choice = rng.choice(param.enum)
        if isinstance(choice, str | int) and not isinstance(choice, bool) and len(str(choice)) < 30:
            return str(choice)
    if known_opaque or is_opaque(param):
        return str(rng.randint(2, 99999)) if rng.random() < 0.7 else _token(rng)
    example = param.example
    usable = isinstance(example, str | int | float) and not isinstance(example, bool)
    if usable and 0 < len(str(example)) < 30 and rng.random() < 0.4:
        return str(example)
    for word in words(param.name):  # the first word that says: `countryCode` is a country
        kind = SYNONYMS.get(word, word)
        if kind in VALUES:
            return rng.choice(VALUES[kind])
        if word in NAMED or word in {"author", "artist", "owner", "user", "username", "login"}:
            return entity(rng)
    if param.type in ("integer", "number"):
        return str(rng.randint(1, 500))
    return entity(rng) if rng.random() < 0.6 else rng.choice(VALUES["category"])


def _token(rng: random.Random) -> str:
    letters = "abcdefghjkmnpqrstuvwxyz0123456789"
    return "".join(rng.choice(letters) for _ in range(10)) + str(rng.randint(1, 9))


def own_terms(operations: Sequence[Operation]) -> frozenset[str]:
    """The API's own terms: words of the texts `act` draws on (summary, description, operationId,
    path) that only one of its operations uses; none for an API of two operations or fewer."""
    if len(operations) <= 2:
        return frozenset()
    users = Counter(
        word
        for op in operations
        for word in set(
            words(" ".join([op.summary, sentence(op.description), op.operation_id]))
            + path_words(op.path)
        )
    )
    return frozenset(word for word, count in users.items() if count == 1)


def kind_of(op: Operation, is_item: bool) -> str:
    return "LIST" if op.method == "GET" and not is_item else op.method


def act(
    op: Operation,
    is_item: bool,
    rng: random.Random,
    rare: frozenset[str] = frozenset(),
    wording: Wording = PLAIN,
) -> list[str]:
    """What the operation does, in words a person might pick: from its summary, the first
    sentence of its description, its operationId, its path, a parameter's description or
    (as `wording.asked` says) the fields it returns; some words dropped or said otherwise
    (`reword`), the method said in a verb of one's own or in the spec's."""
    sources: list[tuple[str, float]] = []
    if op.summary:
        sources.append((op.summary, 3.0))
    described = sentence(op.description)
    if described:
        sources.append((described, 3.0))
    if op.operation_id:
        sources.append((" ".join(words(op.operation_id)), 1.0))
    sources.append((" ".join(path_words(op.path)), 1.0))
    described_params = [p for p in op.parameters if p.description and p.location != "header"]
    if described_params:
        sources.append((sentence(rng.choice(described_params).description), 0.7))
    # the fields are read only when the wording asks for them: `plain` never does
    fields = op.response_fields if op.method == "GET" else op.body_fields
    asked = _fields(fields) if wording.asked > 0 else []
    if asked:
        picked = rng.sample(asked, min(len(asked), rng.randint(1, 3)))
        sources.append((listing(picked), wording.asked))
    text = rng.choices([s for s, _ in sources], weights=[w for _, w in sources])[0]
    spoken = words(text)
    content = [w for w in spoken if w not in STOPWORDS and len(w) > 1]
    own_verb = bool(content) and content[0] in METHOD_WORDS
    if own_verb:
        content = content[1:]
    # a sentence that starts with a verb of its own ('convert currency', 'play a track')
    verb_first = bool(content) and not own_verb and spoken[0] == content[0]
    if not content:
        content = [w for w in path_words(op.path) if len(w) > 1] or ["it"]
    kept = [w for w in content if rng.random() < 0.75] or content[:1]
    size = rng.randint(2, 6)
    if len(kept) > size:
        start = rng.randrange(len(kept) - size + 1)
        kept = kept[start : start + size]
    if len(kept) > 2 and rng.random() < 0.25:
        i = rng.randrange(len(kept) - 1)
        kept[i], kept[i + 1] = kept[i + 1], kept[i]
    kept = reword(kept, rng, rare, wording)
    verbs = VERBS.get(kind_of(op, is_item), VERBS["GET"])
    if verb_first and rng.random() < 0.5:
        return kept  # the spec's own verb: "convert currency", "play track"
    return [rng.choice(verbs), *kept]


def _fields(dotted: Sequence[str]) -> list[str]:
    """The things a response holds (or a body takes) as a person names them: the last part of
    each field's name, shallow ones first, without the envelope ('data', 'paging')."""
    shallow = sorted(dotted[:200], key=lambda f: f.count("."))
    names = dict.fromkeys(" ".join(words(f.rsplit(".", 1)[-1])) for f in shallow)
    return [n for n in names if n and n not in ENVELOPE][:12]


def reword(
    spoken: list[str],
    rng: random.Random,
    rare: frozenset[str] = frozenset(),
    wording: Wording = PLAIN,
) -> list[str]:
    """Some words said in other words of like meaning ('photo' for 'image'): people describe
    what they want without the spec's vocabulary. The API's own terms (`rare`: words only one
    of its operations uses) are the ones a newcomer knows least: said otherwise more often, or
    left out when nothing close in meaning is known."""
    if wording.reworded <= 0 and wording.terms_reworded <= 0:
        return spoken
    from opensesame_predictor.core.vectors import vectors

    said = []
    for word in spoken:
        chance = wording.terms_reworded if word in rare else wording.reworded
        others = vectors().neighbours(word) if rng.random() < chance else []
        if others:
            said.append(rng.choice(others))
        elif word not in rare or not wording.terms_dropped or rng.random() >= wording.terms_dropped:
            said.append(word)
    return said or spoken[:1]


ASIDES = ("because of the", "since the", "like the", "about the", "with the", "not the")


def aside(other: Operation, rng: random.Random) -> list[str]:
    """A few words of what another operation is about, as requests mention more than the
    next step ('... like the one in my saved reports')."""
    text = other.summary or sentence(other.description) or " ".join(path_words(other.path))
    content = [w for w in words(text) if w not in STOPWORDS and w not in METHOD_WORDS]
    if not content:
        return []
    picked = rng.sample(content, min(len(content), rng.randint(1, 3)))
    return [rng.choice(ASIDES), *picked]


def about_api(title: str, rng: random.Random) -> list[str]:
    """Words of the API's name a person might add ('on the Bible API', 'from Forex')."""
    named = [w for w in title.split() if w.lower() not in {"api", "apis", "the", "rest", "v1"}]
    if not named:
        return []
    return [rng.choice(["on", "from", "using", "with", "in"]), *named[: rng.randint(1, 3)]]


def given(param: Parameter, value: str, rng: random.Random) -> list[str]:
    """A value as a request says it: bare, or with the parameter's words ('country Japan')."""
    named = [w for w in words(param.name) if w not in OPAQUE] or words(param.name)
    style = rng.random()
    if style < 0.35:
        return [rng.choice(["for", "in", "of", "with"]), value]
    if style < 0.8:
        return [rng.choice(["for", "with", "of", ""]), *named[-2:], value]
    return [value]


def listing(values: Sequence[str]) -> str:
    """'Japan', 'Japan and Germany', 'Japan, Germany and Brazil'."""
    if len(values) == 1:
        return values[0]
    return ", ".join(values[:-1]) + " and " + values[-1]


def sentence_of(parts: list[str], rng: random.Random, chatty: float = 0.4) -> str:
    """Words joined into a request: an opener, maybe a circumstance before or after, a
    capital and an end mark now and then."""
    opener = rng.choice(OPENERS)
    text = " ".join(p for p in [opener, *parts] if p).strip()
    text = re.sub(r"\s+", " ", text)
    if rng.random() < 0.5:
        text = text[:1].upper() + text[1:]
    if rng.random() < 0.4:
        text += "?" if opener.startswith(("can", "could", "would", "is", "hey", "hi")) else "."
    if rng.random() < chatty:
        context = rng.choice(CONTEXTS)
        text = f"{context} {text}" if rng.random() < 0.5 else f"{text} {context}"
    return text
