"""`opensesame-predictor train`: fit the ranker's weights on synthetic cases from specs, and
measure them the way a new user meets them: on APIs left out of the fit.

The specs are split into folds by provider. Each fold's specs are also loaded together as
workspaces, and a case is ranked either within its own API or within its fold's workspace, so
the weights learn to tell which API a request is about. Fold k is scored with weights fitted
on the other folds (leave-API-out validation); the softmax scale and the top-label map are
calibrated on those held-out scores; the shipped weights are then fitted on every fold.
Deterministic: the same specs, seed and code give the same file. Evaluation prompts are never
read here.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from opensesame_predictor.config import Settings
from opensesame_predictor.core import phrasing
from opensesame_predictor.core.catalog import (
    Catalog,
    LoadedSpec,
    ProgressCallback,
    SpecLoader,
    Workspace,
    resolve_sources,
)
from opensesame_predictor.core.encoder import model_in
from opensesame_predictor.core.features import words
from opensesame_predictor.core.models import HistoryEvent, PredictRequest
from opensesame_predictor.core.predictor import Predictor, feature_matrix
from opensesame_predictor.core.ranker import (
    FEATURES,
    GROUPS,
    REFERENCE_TEMPERATURE,
    Group,
    Ranker,
    Scored,
    calibrate,
    calibrate_top,
    fit,
)
from opensesame_predictor.core.store import SpecStore
from opensesame_predictor.offline import dump as dumped
from opensesame_predictor.offline.authored import AuthoredFile, case_matrices, read_authored
from opensesame_predictor.offline.evaluate import ranking_metrics
from opensesame_predictor.offline.synthetic import SyntheticCase, generate
from opensesame_predictor.offline.tuning import fold_model_specs, tuned_specs
from opensesame_predictor.service import fetch_policy

DEPRECATED_PENALTY = -1.0
_VERSION = re.compile(r"v?\d+(\.\d+)*|api|rest", re.IGNORECASE)
WORKSPACE_SIZES = (5, 30)  # specs loaded together, as users load a folder of them
SMALL_API = (3, 12)  # operations of a small API carved out of a bigger one
SMALL_WORKSPACE = (4, 12)  # small APIs loaded together
IN_WORKSPACE = 0.5  # share of cases ranked among every spec of their workspace
PART = "_part"  # the name of a small API carved out of a spec: the spec's name + this


@dataclass
class Ranked:
    """One case's candidates as a feature matrix and where the gold one is (-1: not among
    them, a miss whatever the weights), with what the report groups it by."""

    matrix: np.ndarray
    gold: int
    api: str
    kind: str
    context: str  # "api" (its own spec) or "workspace"
    case: SyntheticCase | None = None
    keys: list[str] = field(default_factory=list)  # the candidates, for reports


@dataclass
class Metrics:
    n: int
    top1: float
    recall_at_5: float
    mrr: float
    ece: float

    @classmethod
    def of(cls, cases: Sequence[Scored], calibration: Ranker) -> Metrics:
        """Metrics of each case's candidate scores and where its gold is among them (-1: not
        among them, a miss); confidences as `calibration` gives them."""
        ranks, confidences = [], []
        for score, gold, closeness in cases:
            probabilities = calibration.probabilities(score, REFERENCE_TEMPERATURE, closeness)
            confidences.append(float(probabilities.max()) if len(score) else 0.0)
            ranks.append(1 + int((score > score[gold]).sum()) if gold >= 0 else 0)
        return cls(**ranking_metrics(ranks, confidences))


@dataclass
class Report:
    """Leave-API-out validation: every case scored by weights that never saw its API."""

    overall: Metrics
    by_context: dict[str, Metrics] = field(default_factory=dict)
    by_kind: dict[str, Metrics] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "overall": vars(self.overall),
            "by_context": {k: vars(v) for k, v in self.by_context.items()},
            "by_kind": {k: vars(v) for k, v in self.by_kind.items()},
        }


def load_specs(sources: list[str], progress: ProgressCallback | None = None) -> list[LoadedSpec]:
    """Every spec the sources name, parsed in memory (training needs no store); the ones that
    fail are skipped and named in the result's summaries."""
    settings = Settings(enable_guardrails=False)
    loader = SpecLoader(SpecStore(None, l1_size=1), fetch_policy(settings), settings.max_spec_bytes)
    workspace = Workspace(loader, resolve_sources(sources))
    return workspace.load(_labelled(progress, "loading")).loaded


def _labelled(progress: ProgressCallback | None, stage: str) -> ProgressCallback | None:
    """The same progress bar, saying which stage it counts."""
    if progress is None:
        return None
    report = progress

    def labelled(done: int, total: int, item: str) -> None:
        report(done, total, f"{stage} {Path(item).name}" if item else stage)

    return labelled


def provider(name: str) -> str:
    """Specs of one provider (`amazonaws.com_s3`, `amazonaws.com_sqs`) stay in one fold."""
    return name.split("_", 1)[0]


def folds_of(names: list[str], folds: int) -> dict[str, int]:
    def fold(name: str) -> int:
        digest = hashlib.sha256(provider(name).encode()).digest()
        return int.from_bytes(digest[:4], "big") % folds

    return {name: fold(name) for name in names}


def workspaces_of(
    names: list[str], rng: random.Random, sizes: tuple[int, int] | None = None
) -> list[list[str]]:
    """The names cut into workspaces of 5 to 30 specs (fewer when there are fewer)."""
    shuffled = sorted(names)
    rng.shuffle(shuffled)
    groups: list[list[str]] = []
    while shuffled:
        size = rng.randint(*(sizes or WORKSPACE_SIZES))
        groups.append(shuffled[:size])
        shuffled = shuffled[size:]
    return groups


def small_api(item: LoadedSpec, rng: random.Random) -> LoadedSpec | None:
    """A small API carved out of a bigger one: the operations under one first path segment,
    as many real APIs have only a handful of operations. It keeps its provider's fold."""
    assert item.parsed is not None
    operations = item.parsed.operations
    if len(operations) <= SMALL_API[1]:
        return None
    by_segment: dict[str, list[int]] = {}
    for i, op in enumerate(operations):
        literals = [s for s in op.path.split("/") if s and "{" not in s]
        meaningful = [s for s in literals if not _VERSION.fullmatch(s)] or ["/"]
        by_segment.setdefault(meaningful[0], []).append(i)
    fitting = [ids for ids in by_segment.values() if SMALL_API[0] <= len(ids) <= SMALL_API[1]]
    if fitting:
        chosen = rng.choice(fitting)
    else:
        size = rng.randint(*SMALL_API)
        start = rng.randrange(len(operations) - size + 1)
        chosen = list(range(start, start + size))
    name = f"{item.summary.name}{PART}"
    parsed = item.parsed.model_copy(
        update={"operations": [replace(operations[i], spec=name) for i in chosen]}
    )
    summary = item.summary.model_copy(update={"name": name, "operations": len(chosen)})
    return LoadedSpec(summary, parsed)


def rank_cases(
    cases: list[SyntheticCase], predictor: Predictor, in_workspace: list[bool]
) -> list[Ranked]:
    """Each case's candidates, ranked within its own API or within the whole workspace."""
    ranked_cases: list[Ranked] = []
    for case, whole in zip(cases, in_workspace, strict=True):
        request = PredictRequest(
            prompt=case.prompt[:4096],
            history=[HistoryEvent(api_call=call) for call in case.history],
            max_predictions=20,
            spec=None if whole else case.spec,
        )
        ranked, _ = predictor.rank(request)
        context = "workspace" if whole else "api"
        if not ranked:
            ranked_cases.append(Ranked(feature_matrix([]), -1, case.spec, case.kind, context))
            continue
        matrix = feature_matrix(ranked)
        uids = [item.operation.uid for item in ranked]
        gold = f"{case.spec}:{case.gold}"
        where = uids.index(gold) if gold in uids else -1
        ranked_cases.append(Ranked(matrix, where, case.spec, case.kind, context, case, uids))
    return ranked_cases


def build_cases(
    loaded: list[LoadedSpec],
    seed: int,
    folds: int,
    progress: ProgressCallback | None = None,
    readers: Mapping[int, Path | None] | None = None,
    wordings: Sequence[phrasing.Wording] = (phrasing.PLAIN,),
) -> tuple[list[Ranked], dict[str, int], int]:
    """Synthetic cases of every spec, ranked in their contexts; and each spec's fold. Fold k's
    requests and operations are read by the sentence model in `readers[k]` (default: the
    shipped one); round r of each workspace's tasks is worded as `wordings[r % len]`."""
    rng = random.Random(seed)
    usable = [item for item in loaded if item.parsed is not None and item.parsed.operations]
    small = [part for item in usable if (part := small_api(item, rng)) is not None]
    fold = folds_of([item.summary.name for item in usable + small], folds)
    small_names = {item.summary.name for item in small}
    groups = [
        (k, group)
        for k in range(folds)
        for names, sizes in ((small_names, SMALL_WORKSPACE), (set(fold) - small_names, None))
        for group in workspaces_of(sorted(n for n in names if fold[n] == k), rng, sizes)
    ]
    usable += small
    by_name = {item.summary.name: item for item in usable}
    ranked: list[Ranked] = []
    generated = 0
    for number, (k, group) in enumerate(groups):
        if progress:
            progress(number, len(groups), f"workspace {number + 1}")
        with model_in((readers or {}).get(k)):
            catalog = Catalog([by_name[name] for name in group])
            cases = generate([catalog], seed=rng.randrange(2**31), wordings=wordings)
            generated += len(cases)
            predictor = Predictor(catalog, ranker=Ranker(), enable_guardrails=False)
            in_workspace = [rng.random() < IN_WORKSPACE for _ in cases]
            ranked += rank_cases(cases, predictor, in_workspace)
    if progress:
        progress(len(groups), len(groups), "")
    return ranked, fold, generated


def sentence_readers(
    files_by_fold: Mapping[int, set[str]],
    tuned: set[str],
    fold_models: Mapping[str, set[str]],
) -> tuple[dict[int, str | None], set[str]]:
    """Which sentence model reads each fold's cases, so that the ranker never learns from a
    model's reading of requests it was tuned on: the shipped model (None) if it was tuned on
    none of the fold's specs, else the first fold model tuned on none of them. Where there is
    none, the specs the shipped model was tuned on are left out (returned)."""
    readers: dict[int, str | None] = {}
    left_out: set[str] = set()
    for k, files in sorted(files_by_fold.items()):
        free = [name for name, specs in fold_models.items() if not files & specs]
        readers[k] = None if not files & tuned or not free else free[0]
        if readers[k] is None:
            left_out |= files & tuned
    return readers, left_out


def validate(
    ranked: list[Ranked],
    fold: dict[str, int],
    folds: int,
    c: float,
    dropped: list[int],
    progress: ProgressCallback | None = None,
    written: Sequence[Scored] = (),
    learned: Sequence[dumped.DumpedCase] = (),
    share: float = 0.0,
) -> tuple[Report, Ranker, list[Scored]]:
    """Leave-API-out: each fold scored by weights fitted on the others. The softmax scale and
    the top-label map are calibrated on what a fit has not seen at all, neither the API nor the
    kind of task (fit without fold k and without one kind, scored on that kind in fold k): real
    requests come in shapes the generator does not make, and a scale fitted on familiar shapes
    reads high. Requests people wrote (`written`, scored without their APIs) weigh as much in it
    as all the synthetic cases together. `learned`: authored cases each fit learns from at
    `share` (`with_authored`), those that load none of the held-out fold's APIs. Returns the
    report, the calibration and the synthetic scores it was fitted on."""
    held_out: list[tuple[Ranked, Scored]] = []
    unseen: list[Scored] = []
    kinds = sorted({r.kind for r in ranked})
    fits = folds * (1 + len(kinds))
    for k in range(folds):
        if progress:
            progress(k * (1 + len(kinds)), fits, f"validation fold {k + 1} of {folds}")
        train_groups = _groups([r for r in ranked if fold[r.api] != k], dropped)
        if not train_groups:
            continue
        fold_apis = {r.api.removesuffix(PART) for r in ranked if fold[r.api] == k}
        beside = learnable({"": learned}, fold_apis)
        coef = fit_with(train_groups, beside, share, dropped, c)
        held_out += [(r, scored_case(r.matrix, coef, r.gold)) for r in ranked if fold[r.api] == k]
        for kind in kinds:
            others = _groups([r for r in ranked if fold[r.api] != k and r.kind != kind], dropped)
            if not others:
                continue
            coef = fit_with(others, beside, share, dropped, c)
            if progress:
                done = k * (1 + len(kinds)) + 1 + kinds.index(kind) + 1
                progress(done, fits, f"validation fold {k + 1} of {folds}")
            unseen += [
                scored_case(r.matrix, coef, r.gold)
                for r in ranked
                if fold[r.api] == k and r.kind == kind and r.gold >= 0 and len(r.matrix) > 1
            ]
    if progress:
        progress(fits, fits, "validation done")
    synthetic = unseen or [s for r, s in held_out if r.gold >= 0 and len(s[0]) > 1]
    calibration = calibrated(synthetic, written)

    def metrics(subset: list[tuple[Ranked, Scored]]) -> Metrics:
        return Metrics.of([s for _, s in subset], calibration)

    report = Report(
        overall=metrics(held_out),
        by_context={
            context: metrics([h for h in held_out if h[0].context == context])
            for context in ("api", "workspace")
        },
        by_kind={
            kind: metrics([h for h in held_out if h[0].kind == kind])
            for kind in sorted({r.kind for r, _ in held_out})
        },
    )
    return report, calibration, synthetic


def calibrated(synthetic: Sequence[Scored], written: Sequence[Scored]) -> Ranker:
    """The softmax scale and the top-label map fitted on scores of synthetic cases a fit has
    not seen and of requests people wrote, each source weighing half (`validate`)."""
    shares = [1.0 / max(len(synthetic), 1)] * len(synthetic)
    shares += [1.0 / max(len(written), 1)] * len(written)
    together = [*synthetic, *written]
    scale = calibrate([(s, g) for s, g, _ in together], shares)
    return Ranker({}, scale, top_map=calibrate_top(together, shares, scale))


# The top-label map reads how close in meaning the request is to the best-scored candidate.
SENTENCE = FEATURES.index("sentence")


def scored_case(matrix: np.ndarray, coef: np.ndarray, gold: int) -> Scored:
    """One case's candidate scores under the weights, where its gold is, and the closeness the
    calibration map reads."""
    scores = matrix @ coef
    return scores, gold, closeness(matrix, scores)


def closeness(matrix: np.ndarray, scores: np.ndarray) -> float:
    """The sentence model's cosine of the request and its best-scored candidate, as the
    predictor passes it to `Ranker.probabilities`."""
    return float(matrix[int(np.argmax(scores)), SENTENCE]) if len(scores) else 0.0


def _groups(ranked: list[Ranked], dropped: list[int]) -> list[Group]:
    """Cases that can teach: the gold is among several candidates. Dropped features are 0."""
    groups = []
    for r in ranked:
        if r.gold >= 0 and len(r.matrix) > 1:
            matrix = r.matrix.copy()
            matrix[:, dropped] = 0.0
            groups.append((matrix, r.gold))
    return groups


def train(
    specs: list[str],
    seed: int = 13,
    c: float = 1.0,
    drop: tuple[str, ...] = (),
    folds: int = 5,
    progress: ProgressCallback | None = None,
    authored: Sequence[Path] = (),
    scored_only: Sequence[Path] = (),
    fold_models: Path | None = None,
    dump: Path | None = None,
    wording: str = "plain",
    learn_authored: float = 0.0,
) -> tuple[Ranker, dict[str, Any]]:
    """Fit weights on synthetic cases from the specs, with leave-API-out validation. `drop`
    names features or groups of features to leave out (their weights stay 0). `authored`:
    files of requests people wrote over some of the specs (`offline.authored`), scored and
    calibrated on (each file's ECE is reported with a calibration fitted without it);
    `scored_only`: such files scored but not calibrated on. `fold_models`: the folder of the
    sentence models tuned on some folds only (`offline.tuning`, `make encoder`),
    NAME/encoder.onnx each. `dump`: where to save the ranked cases (`offline.dump`).
    `wording`: how the synthetic requests are worded, a name of `phrasing.WORDINGS`.
    `learn_authored`: the share of the fit the authored files' cases carry (0: scored only);
    each file is then scored by a fit that learned from the others' cases that load none of its
    APIs, and the shipped fit learns from them all."""
    if not 0.0 <= learn_authored < 1.0:
        raise ValueError(f"learn_authored must be at least 0 and below 1, not {learn_authored}")
    if wording not in phrasing.WORDINGS:
        raise ValueError(f"unknown wording {wording!r}: one of {', '.join(phrasing.WORDINGS)}")
    # Synthetic requests aim at deprecated operations as often as at any other, so the data
    # cannot teach what real callers do (avoid them): that weight is set, not learned.
    dropped = [i for i, name in enumerate(FEATURES) if name in _expand((*drop, "deprecated"))]
    available: dict[str, set[str]] = {}
    if fold_models is not None:
        available = fold_model_specs()
        for name in available:  # checked before the corpus is loaded: that takes minutes
            if not (fold_models / name / "encoder.onnx").is_file():
                raise ValueError(
                    f"{fold_models / name}: no fold model there (`make encoder` builds them)"
                )
    everything = load_specs(specs, progress)
    names = sorted({item.summary.name for item in everything if item.parsed is not None})
    if not names:
        raise ValueError(f"no spec could be loaded from {', '.join(specs)}")
    folds = max(1, min(folds, len({provider(n) for n in names})))
    fold_of = folds_of(names, folds)
    files_by_fold: dict[int, set[str]] = {k: set() for k in range(folds)}
    for item in everything:
        if item.parsed is not None:
            files_by_fold[fold_of[item.summary.name]].add(Path(item.summary.source).name)
    # the shipped sentence model read these specs' synthetic requests when it was tuned: on
    # them its reading is better than on an API nobody tuned for, and would be trusted too
    # much; each fold is read by a model that was not tuned on it, or its tuned specs left out
    reader_names, left_out = sentence_readers(files_by_fold, tuned_specs(), available)
    readers = {
        k: None if reader is None or fold_models is None else fold_models / reader
        for k, reader in reader_names.items()
    }
    loaded = [item for item in everything if Path(item.summary.source).name not in left_out]
    written = [read_authored(path, loaded) for path in (*authored, *scored_only)]
    calibrated_on = {path.name for path in authored}
    ranked, fold, generated = build_cases(
        loaded, seed, folds, progress, readers, phrasing.WORDINGS[wording]
    )
    groups = _groups(ranked, dropped)
    if not groups:
        raise ValueError("the specs gave no synthetic case to learn from")
    by_file = {w.name: authored_cases(w) for w in written}
    apis = {w.name: w.apis for w in written}
    if dump is not None:
        _dump(dump, ranked, fold, by_file, apis)
    scored = _score_authored(by_file, apis, ranked, dropped, c, learn_authored)
    learned = [case for file in by_file.values() for case in file] if learn_authored else []
    usable = {
        name: [(s, g, x) for s, g, x in cases if g >= 0 and len(s) > 1]
        for name, cases in scored.items()
        if name in calibrated_on
    }
    synthetic: list[Scored] = []
    coef = fit_with(groups, learned, learn_authored, dropped, c)
    if folds > 1:
        report, calibration, synthetic = validate(
            ranked,
            fold,
            folds,
            c,
            dropped,
            progress,
            [case for cases in usable.values() for case in cases],
            learned,
            learn_authored,
        )
    else:
        report = None  # one provider: nothing is held out, the scale is the shipped fit's own
        calibration = Ranker({}, calibrate([(m @ coef, g) for m, g in groups]))

    def out_of_sample(name: str) -> Ranker:
        """A file calibrated on is reported with a calibration fitted without it."""
        if name not in usable or not synthetic:
            return calibration
        others = [case for other, cases in usable.items() if other != name for case in cases]
        return calibrated(synthetic, others)

    weights = {name: float(w) for name, w in zip(FEATURES, coef, strict=True)}
    weights["deprecated"] = DEPRECATED_PENALTY
    ranker = Ranker(weights, calibration.scale, f"learned-s{seed}", calibration.top_map)
    meta: dict[str, Any] = {
        "trained_on": sorted(
            Path(item.summary.source).name for item in loaded if item.parsed is not None
        ),
        "left_out_as_tuned_on": len(everything) - len(loaded),
        "sentence_model_read": {
            name or "shipped": sorted(
                set().union(*(files_by_fold[k] for k, n in reader_names.items() if n == name))
                - left_out
            )
            for name in dict.fromkeys(reader_names.values())
        },
        "cases": generated,
        "cases_without_gold_candidate": sum(1 for r in ranked if r.gold < 0),
        "seed": seed,
        "wording": wording,
        "learned_from_authored": learn_authored,
        "c": c,
        "folds": folds,
        "dropped": sorted(_expand(drop)),
    }
    if report is not None:
        meta["validation"] = report.as_dict()
    if scored:
        meta["authored"] = {
            name: {
                **vars(Metrics.of(cases, out_of_sample(name))),
                "calibrated_on": name in calibrated_on,
            }
            for name, cases in scored.items()
        }
    return ranker, meta


def authored_cases(written: AuthoredFile) -> list[dumped.DumpedCase]:
    """A file's cases as the ranker sees them: candidates, golds and the APIs each loads."""
    return [
        dumped.DumpedCase(
            matrix,
            gold,
            ",".join(s.summary.name for s in specs),
            written.name,
            "authored",
            -1,
            len(words(case.prompt)),
        )
        for (matrix, gold), specs, case in zip(
            case_matrices(written), written.specs, written.cases, strict=True
        )
    ]


def _dump(
    path: Path,
    ranked: list[Ranked],
    fold: dict[str, int],
    cases: dict[str, list[dumped.DumpedCase]],
    apis: dict[str, set[str]],
) -> None:
    synthetic = [
        dumped.DumpedCase(
            r.matrix,
            np.arange(len(r.matrix)) == r.gold,
            r.api,
            r.kind,
            r.context,
            fold[r.api],
            len(words(r.case.prompt)) if r.case is not None else 0,
        )
        for r in ranked
    ]
    dumped.save(path, synthetic, cases, apis)


def learnable(
    files: Mapping[str, Sequence[dumped.DumpedCase]], apis: set[str], skip: Sequence[str] = ()
) -> list[dumped.DumpedCase]:
    """The authored cases a fit may learn from when it scores cases of `apis`: those of the
    files not in `skip` that load none of them (a workspace case names every spec it loads)."""
    return [
        case
        for name, cases in files.items()
        if name not in skip
        for case in cases
        if not set(case.api.split(",")) & apis
    ]


def with_authored(
    groups: list[Group],
    learned: Sequence[dumped.DumpedCase],
    share: float,
    dropped: Sequence[int],
) -> tuple[list[Group], list[float]]:
    """Synthetic cases and authored ones to fit together, and how much each counts: the
    authored cases together `share` of the whole (people's requests teach what synthetic ones
    word too plainly, but are few). A case with several golds is learned once per gold, each
    counting a part."""
    extra: list[Group] = []
    parts: list[float] = []
    for case in learned if share > 0.0 else ():
        golds = np.flatnonzero(case.gold)
        if len(golds) and len(case.matrix) > 1:
            matrix = case.matrix.copy()
            matrix[:, list(dropped)] = 0.0
            extra += [(matrix, int(g)) for g in golds]
            parts += [1.0 / len(golds)] * len(golds)
    if not extra:
        return groups, [1.0] * len(groups)
    each = share / (1.0 - share) * len(groups) / sum(parts)
    return [*groups, *extra], [1.0] * len(groups) + [each * part for part in parts]


def fit_with(
    groups: list[Group],
    learned: Sequence[dumped.DumpedCase],
    share: float,
    dropped: Sequence[int],
    c: float,
) -> np.ndarray:
    """`fit` on synthetic cases and, at `share`, authored ones (`with_authored`)."""
    together, weights = with_authored(groups, learned, share, dropped)
    return fit(together, c, weights)


def best_gold(cases: Sequence[dumped.DumpedCase], coef: np.ndarray) -> list[Scored]:
    """Each case's candidate scores under the weights, where its best-scored gold is (-1: none
    is a candidate), and the closeness the calibration map reads."""
    scored = []
    for case in cases:
        scores = case.matrix @ coef
        golds = np.flatnonzero(case.gold)
        gold = int(golds[np.argmax(scores[golds])]) if len(golds) else -1
        scored.append((scores, gold, closeness(case.matrix, scores)))
    return scored


def _score_authored(
    cases: dict[str, list[dumped.DumpedCase]],
    apis: dict[str, set[str]],
    ranked: list[Ranked],
    dropped: list[int],
    c: float,
    share: float,
) -> dict[str, list[Scored]]:
    """The authored cases scored by weights fitted without any of their APIs (nor the small
    APIs carved out of them); with `share`, each file's fit also learns from the other files'
    cases that load none of its APIs."""
    if not cases:
        return {}
    every = set().union(*apis.values())
    groups = _groups([r for r in ranked if r.api.removesuffix(PART) not in every], dropped)
    scored = {}
    coef = None
    for name, file in cases.items():
        if coef is None or share > 0.0:
            beside = learnable(cases, apis[name], [name])
            coef = fit_with(groups, beside, share, dropped, c)
            coef[FEATURES.index("deprecated")] = DEPRECATED_PENALTY  # as in the shipped weights
        scored[name] = best_gold(file, coef)
    return scored


def _expand(names: tuple[str, ...]) -> set[str]:
    unknown = [n for n in names if n not in GROUPS and n not in FEATURES]
    if unknown:
        raise ValueError(f"unknown feature or group: {', '.join(unknown)}")
    return {feature for n in names for feature in GROUPS.get(n, (n,))}
