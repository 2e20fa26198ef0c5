"""Parameter values for a predicted operation, from the prompt and the history, with provenance."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from opensesame_predictor.core.features import INTENT_METHODS, QUOTED, STOPWORDS, stem, words
from opensesame_predictor.core.history import GENERIC, Shape
from opensesame_predictor.core.models import Operation, Parameter, ValueSource

# Double quotes, curly quotes, or single quotes that stand apart from words: the apostrophe
# of "The Beatle's newest album" opens no quotation.
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_OWNER_REPO = re.compile(r"(?<![\w/.])([A-Za-z0-9][\w.-]{0,38})/([A-Za-z0-9][\w.-]{0,99})(?![\w/])")
# a number on its own: not part of a word or a version, but it may end a sentence ("order 7.")
_NUMBER = re.compile(r"(?<![\w.])#?(\d{1,19})(?!\w|\.\d)")
# A number that is part of a date, a time, an amount or a count identifies nothing: '9 May
# 2024', '10:00', '$3', '30 %', 'within 2 km', nor does one inside a code ('CVE-2023-20198').
_MONTHS = frozenset(
    """jan feb mar apr may jun jul aug sep sept oct nov dec january february march april june
    july august september october november december""".split()
)
_YEAR = re.compile(r"(?:19|20)\d\d")
_JOINED_BEFORE = re.compile(r"(?:[-:$€£¥]|\d/)\s?$")
_JOINED_AFTER = re.compile(r"^(?:\s?%|-\w|:\d|/\d|\s?(?:am|pm)\b)", re.IGNORECASE)
_WORD_BEFORE = re.compile(r"([A-Za-z]+)\W{0,2}$")
_WORD_AFTER = re.compile(r"^\s([A-Za-z]+)")
_NEXT_WORD = re.compile(r"\s{1,2}([A-Za-z]+)")
# a channel, tag or handle: '#general', '@octocat' (an email's '@' has a word before it)
_HANDLE = re.compile(r"(?<![\w@#/])([#@][A-Za-z][\w.-]{0,79})")
# words before a count ("within 2 km", "the last 10 songs"); a noun before a number names
# the thing it identifies ("order 7", "user 4412")
_BEFORE_COUNT = STOPWORDS | frozenset(
    "within after under over above below around about least most only last next first top "
    "past every per nearly almost up".split()
)
_TOKEN_ID = re.compile(r"\b(?=[A-Za-z0-9_-]{8,64}\b)(?=[^\s]*\d)(?=[^\s]*[A-Za-z])[A-Za-z0-9_-]+\b")
# A capitalised word (a dot only inside it, as in "J.R.R."), joined to the next one by spaces
# and at most two small words: "Sofia Coppola", "The Lord of the Rings".
_CAPITALISED = r"[A-Z](?:[\w'’-]|\.(?=\S))*"
_NAME = re.compile(
    rf"\b({_CAPITALISED}(?:\s+(?:(?:of|the|de|del|van|von|and|&)\s+){{0,2}}{_CAPITALISED})*)"
)
_SENTENCE_START = re.compile(r"(^|[.!?]\s+)$")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_POSSESSIVE = re.compile(r"['’]s?$")
_NOT_NAMES = frozenset({"i", "i'm", "i've", "i'd", "i'll", "ok", "okay"})
# Words right before a name that say it needs no look-up: it is given to a thing ("a (new)
# playlist called X"; "the pet called X" is one that exists), it is a thing's new name ("rename
# it to X", "name it X"), or the thing is the caller's own, which its listing finds ("my
# playlist X")
_GIVEN = r"(?:a|an|new|fresh)\s+(?:[\w-]+\s+){0,3}(?:called|named|titled)"
_RENAMED = r"(?:call|name)\s+(?:it|them)|rename\b[^.,;:!?]{0,60}?\s(?:to|as)"
_OWN = r"(?:my|our)(?:\s+[\w-]+){0,2}"
_NOT_LOOKED_UP = re.compile(rf"\b(?:{_GIVEN}|{_RENAMED}|{_OWN})\s*$", re.IGNORECASE)


@lru_cache(maxsize=16384)
def normalise(name: str) -> str:
    """`petId`, `pet_id` and `pet-id` compare equal."""
    return _NOT_ALNUM.sub("", name.lower())


@dataclass
class PromptValues:
    """Concrete values a prompt carries."""

    quoted: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    owner_repo: list[tuple[str, str]] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)  # ones that may identify something
    amounts: list[str] = field(default_factory=list)  # dates, times, amounts, counts
    tokens: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)  # short capitals: USD, EDDF, TV
    known: int = 0  # names of new things or of the caller's own: nothing to look up
    handles: list[str] = field(default_factory=list)  # '#general', '@octocat': no ranking cue
    # value -> the (stemmed) noun said next to it: "task 5 of project 3", "the #general channel"
    labels: list[tuple[str, str]] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(
            self.quoted or self.emails or self.owner_repo or self.all_numbers or self.tokens
        )

    @property
    def all_numbers(self) -> list[str]:
        """Every number. The ranking counts each as a value given: counting only
        the ones that may identify something measured +0.004 MRR on the authored requests,
        below what a refit has to earn."""
        return [*self.numbers, *self.amounts]

    @property
    def listed(self) -> int:
        """How many distinct values the prompt gives: a call may be made once for each."""
        given = [*self.quoted, *self.names, *self.all_numbers, *self.tokens, *self.emails]
        return len(set(given)) + len(set(self.owner_repo))

    @property
    def to_look_up(self) -> int:
        """How many things the prompt names without their ids: looked up first."""
        return len(self.names) + len(self.quoted) - self.known

    def _label(self, value: str, text: str, start: int, end: int) -> None:
        """Note the noun that says what `value` (at `start`..`end` in `text`) is: the word
        before it, else, after a small word, the word after it ("the #general channel")."""
        before = _WORD_BEFORE.search(text, max(0, start - 24), start)
        word = before.group(1).lower() if before else ""
        if not word or word in _BEFORE_COUNT:
            after = _NEXT_WORD.match(text, end)
            word = after.group(1).lower() if after else ""
        if word and word not in _BEFORE_COUNT:
            self.labels.append((value, stem(word)))

    def _note_known(self, text: str, start: int) -> None:
        """A name (at `start` in `text`) the words before it give to a new thing, or say is the
        caller's own; only the last words before it count, so long prompts stay cheap."""
        if _NOT_LOOKED_UP.search(text, max(0, start - 120), start):
            self.known += 1


def extract_values(prompt: str) -> PromptValues:
    values = PromptValues()
    for quotation in QUOTED.finditer(prompt):
        quoted = (quotation.group(1) or quotation.group(2) or "").strip()
        if quoted:
            values.quoted.append(quoted)
            values._note_known(prompt, quotation.start())
            values._label(quoted, prompt, quotation.start(), quotation.end())
    values.emails = _EMAIL.findall(prompt)
    unquoted = QUOTED.sub(" ", prompt)
    values.owner_repo = [
        (a, b) for a, b in _OWNER_REPO.findall(unquoted) if not (a.isdigit() and b.isdigit())
    ]
    for number in _NUMBER.finditer(unquoted):
        found = values.amounts if _is_amount(unquoted, number) else values.numbers
        found.append(number.group(1))
        values._label(number.group(1), unquoted, number.start(), number.end())
    for token in _TOKEN_ID.finditer(unquoted):
        if not _EMAIL.search(token.group(0)):
            values.tokens.append(token.group(0))
            values._label(token.group(0), unquoted, token.start(), token.end())
    for handle in _HANDLE.finditer(unquoted):
        values.handles.append(handle.group(1))
        values._label(handle.group(1), unquoted, handle.start(), handle.end())
    for match in _NAME.finditer(unquoted):
        name = _POSSESSIVE.sub("", match.group(1).strip())
        # the characters right before it, in place: a prompt full of names stays cheap
        starts_sentence = bool(
            _SENTENCE_START.search(unquoted, max(0, match.start() - 120), match.start())
        )
        first, _, rest = name.partition(" ")
        if starts_sentence and rest and stem(first.lower()) in INTENT_METHODS:
            name, starts_sentence = rest, False  # "Show Sofia Coppola's films": not the verb
        single = " " not in name
        if single and starts_sentence:
            continue  # a capital that only starts a sentence is not a name
        if single and name.isupper() and len(name) <= 4:
            values.codes.append(name)  # an acronym (TV, API) or a code (USD, EDDF): no name
            continue
        if single and name.lower() in _NOT_NAMES:
            continue  # pronouns name no things
        values.names.append(name)
        values._note_known(unquoted, match.start())
        values._label(name, unquoted, match.start(), match.end())
    return values


def _is_amount(text: str, number: re.Match[str]) -> bool:
    """Whether the number matched in `text` is part of a date, a time, an amount or a count,
    or of a code joined by hyphens: only the characters around it are read."""
    if number.group(0).startswith("#"):
        return False  # '#42' is an issue, not a year
    before = text[max(0, number.start() - 24) : number.start()]
    after = text[number.end() : number.end() + 24]
    if _JOINED_BEFORE.search(before) or _JOINED_AFTER.search(after):
        return True
    if len(number.group(1)) == 4 and _YEAR.fullmatch(number.group(1)):
        return True
    previous = _WORD_BEFORE.search(before)
    following = _WORD_AFTER.search(after)
    word_before = previous.group(1).lower() if previous else ""
    word_after = following.group(1).lower() if following else ""
    if word_before in _MONTHS or word_after in _MONTHS:
        return True
    counted = bool(word_after) and word_after not in STOPWORDS
    return counted and (not word_before or word_before in _BEFORE_COUNT)


_URL = re.compile(r"\bhttps?://\S+|\bwww\.\S+", re.IGNORECASE)


def without_values(prompt: str) -> str:
    """The prompt's words without the values it carries (URLs, emails, `owner/repo`, id-like
    tokens): 'the open issues of octocat/hello-world' is about issues, not about an
    operation whose path says `octocat`."""
    text = _URL.sub(" ", prompt)
    text = _EMAIL.sub(" ", text)
    text = _OWNER_REPO.sub(" ", text)
    return _TOKEN_ID.sub(" ", text)


def count_values(values: PromptValues) -> int:
    """How many ids the prompt supplies: numbers, id-like tokens, emails, and two per owner/repo."""
    return (
        len(values.all_numbers)
        + len(values.tokens)
        + len(values.emails)
        + 2 * len(values.owner_repo)
    )


def history_values(
    path_values: dict[str, Any],
    parameters: dict[str, Any],
    response: dict[str, Any] | None,
    shape: Shape | None = None,
) -> dict[str, Any]:
    """Values one past call makes available, keyed by normalised name. Ids are also keyed by
    the resource they belong to (`personid`), so `{person_id}` and `/artists/{id}` find them."""
    found: dict[str, Any] = {}
    nouns = dict(shape.consumes) if shape else {}
    for source in (parameters, path_values):
        for name, value in source.items():
            if _scalar(value):
                found[normalise(name)] = value
                if name in nouns:
                    found.setdefault(f"{nouns[name]}id", value)
    if isinstance(response, dict):
        own = sorted(shape.yields) if shape else []
        _response_ids(response, own, found, depth=0)
    return found


IDENTIFYING = frozenset({"login", "username", "slug", "key", "name", "uri", "url"})


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _response_ids(node: dict[str, Any], own: list[str], found: dict[str, Any], depth: int) -> None:
    """Top-level fields by name; `id`s keyed by their container's noun, or the operation's."""
    for name, value in node.items():
        if _scalar(value):
            key = normalise(name)
            if key.endswith("id") or key in IDENTIFYING:
                found.setdefault(key, value)
            if key == "id":
                for noun in own:
                    found.setdefault(f"{noun}id", value)
        elif depth < 3:
            child = value[0] if isinstance(value, list) and value else value
            if isinstance(child, dict):
                noun = stem(words(name)[-1]) if words(name) else ""
                generic = noun in GENERIC or not noun
                _response_ids(child, own if generic else [noun], found, depth + 1)


def fills(param: Parameter, values: PromptValues) -> bool:
    """Whether the prompt holds a value of the kind the parameter takes: an email for an
    email, `owner/repo` for an owner or a repository, a number or an id-like token for an id,
    a name, a quotation or a code for anything else ('Japan' for `{country}`)."""
    name = normalise(param.name)
    if "email" in name:
        return bool(values.emails)
    if values.owner_repo and name in _OWNERS | _REPOS:
        return True
    if _is_id(param):
        return bool(values.all_numbers or (values.tokens and param.type != "integer"))
    return bool(values.names or values.quoted or values.codes or values.tokens)


_OWNERS = frozenset({"owner", "org", "user", "username", "organization"})
_REPOS = frozenset({"repo", "repository", "reponame"})


def _is_id(param: Parameter) -> bool:
    return _names_an_id(param) or param.type == "integer"


def _names_an_id(param: Parameter) -> bool:
    """An id or a number of a thing, which no date or count gives (`{year}` takes one)."""
    name = normalise(param.name)
    return name.endswith("id") or name in {"number", "num", "no"}


def _noun(name: str) -> str:
    """What a parameter names, as the words next to a value say it: `taskId` -> task."""
    parts = [w for w in words(name) if w not in _ID_WORDS]
    return stem("".join(parts)) if parts else ""


_ID_WORDS = frozenset({"id", "ids", "key", "uuid", "slug", "name", "code", "number", "no"})


def _said_of(label: str, noun: str) -> bool:
    """Whether a value's label names the noun: `task` for a task, `item` for an order item."""
    if not label or not noun:
        return False
    return label == noun or (len(label) > 2 and noun.endswith(label))


def _from_prompt(param: Parameter, values: PromptValues, elsewhere: set[str]) -> Any:
    """The prompt's value for a parameter: the first of its kind not said of another
    parameter's noun (`elsewhere`: "project 3" is no task's)."""

    def free(found: list[str]) -> list[str]:
        return [v for v in found if v not in elsewhere]

    name = normalise(param.name)
    if "email" in name and values.emails:
        return values.emails[0]
    if values.owner_repo:
        owner, repo = values.owner_repo[0]
        if name in _OWNERS:
            return owner
        if name in _REPOS:
            return repo
    if _is_id(param):
        # an id takes a number that may identify something; any other number (a year, a
        # page, a limit) a date or a count first
        numbers = free(
            values.numbers if _names_an_id(param) else [*values.amounts, *values.numbers]
        )
        if numbers:
            return int(numbers[0]) if param.type == "integer" else numbers[0]
        tokens = free(values.tokens)
        if tokens and param.type != "integer":
            return tokens[0]
    # '@someone' is a user's handle and '#something' a channel's or a tag's, by convention
    for handle in free(values.handles):
        if param.type in ("string", "") and name in _HANDLED[handle[0]]:
            return handle[1:]  # the name the sign marks: APIs take `octocat`, not `@octocat`
    searchable = {"q", "query", "search", "term", "keyword", "keywords", "name", "title", "text"}
    if param.location in ("query", "body") and param.type == "string" and name in searchable:
        if values.quoted:
            return values.quoted[0]
        if values.names:
            return values.names[0]
    if param.enum:
        for candidate in values.quoted + values.names:
            if candidate in param.enum:
                return candidate
    return None


def _said_value(param: Parameter, values: PromptValues, said: list[str], taken: set[str]) -> Any:
    """Of the values the prompt says of the parameter's noun ("task 5"), the first of its
    kind, one not given to another parameter first ("from account 5 to account 9")."""
    numbers, handles = set(values.numbers), set(values.handles)
    ids = numbers | handles | set(values.tokens)
    if param.type == "integer":  # a number, and for an id one that is no year or count
        fitting = [v for v in said if v.isdigit() and (v in numbers or not _names_an_id(param))]
    else:
        fitting = [v for v in said if v in ids or not _names_an_id(param)]
    for value in sorted(fitting, key=lambda v: v in taken):
        taken.add(value)
        if param.type == "integer":
            return int(value)
        return value[1:] if value in handles else value
    return None


_HANDLED = {
    "@": _OWNERS | {"login", "author", "member", "handle", "screenname", "assignee", "mention"},
    "#": frozenset({"channel", "tag", "hashtag", "topic", "label"}),
}


def fill(
    op: Operation, prompt_values: PromptValues, known: dict[str, Any], shape: Shape | None = None
) -> tuple[dict[str, Any], dict[str, ValueSource]]:
    """Values for the operation's parameters: required ones always (a `{name}` placeholder when
    nothing is known), optional ones only when the prompt or the history supplies them."""
    nouns = dict(shape.consumes) if shape else {}
    # what each parameter names, so that each takes the value said of it
    named = {p.name: nouns.get(p.name) or _noun(p.name) for p in op.parameters}
    said = {
        param: [v for v, label in prompt_values.labels if _said_of(label, noun)]
        for param, noun in named.items()
    }
    taken: set[str] = set()
    values: dict[str, Any] = {}
    sources: dict[str, ValueSource] = {}
    for param in op.parameters:
        if param.location in ("header", "cookie"):
            continue
        name = normalise(param.name)
        noun = nouns.get(param.name)
        # what the prompt says of this very thing comes first ("now show pet 42" after a
        # listing), then what the calls made gave, then the prompt's other values
        value: Any = _said_value(param, prompt_values, said[param.name], taken)
        source: ValueSource | None = "prompt" if value is not None else None
        if value is None and name in known:
            value, source = known[name], "history"
        elif value is None and noun and f"{noun}id" in known:
            value, source = known[f"{noun}id"], "history"
        if value is None:
            elsewhere = {v for p, found in said.items() if p != param.name for v in found}
            value = _from_prompt(param, prompt_values, elsewhere)
            source = "prompt" if value is not None else None
        if value is None and param.required:
            if param.example is not None:
                value, source = param.example, "example"
            elif param.default is not None:
                value, source = param.default, "default"
            else:
                value, source = f"{{{param.name}}}", "placeholder"
        if value is not None and source is not None:
            values[param.name] = value
            sources[param.name] = source
    return values, sources
