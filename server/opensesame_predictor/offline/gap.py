"""How far the synthetic requests are from people's, read from a dump (`train --dump`): where
each case's gold operation ranks among its candidates by the words alone (lexical relevance)
and by meaning alone (the sentence model's cosine), synthetic cases by task kind, authored ones
by file. The ranker learns how much to trust each signal from the synthetic cases: where their
gold is easier to find by words than people's is, it trusts words more than real requests
warrant. A change to the generator can be read here before any fit.

    python -m opensesame_predictor.offline.gap DUMP.npz
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from opensesame_predictor.offline.dump import Dump, DumpedCase, load

SIGNALS = ("relevance", "sentence")  # the words alone; meaning alone
BUCKETS = ("1st", "2-3", "4-10", ">10")
_UPPER = (1, 3, 10)  # the last rank of each bucket but the open one


def gold_rank(case: DumpedCase, column: int) -> int:
    """Where the best-placed gold candidate ranks by one feature (1: first; ties go to the
    gold), 0 if no candidate is gold."""
    if not case.gold.any():
        return 0
    values = case.matrix[:, column]
    return 1 + int((values > values[case.gold].max()).sum())


def shares(ranks: Sequence[int]) -> tuple[float, ...]:
    """The share of ranks in each bucket (`BUCKETS`); ranks of 0 (no gold) are not counted."""
    found = np.array([r for r in ranks if r > 0])
    if not len(found):
        return tuple(0.0 for _ in BUCKETS)
    bucket = np.searchsorted(np.array(_UPPER), found)  # 1 -> 0, 2-3 -> 1, 4-10 -> 2, >10 -> 3
    counts = np.bincount(bucket, minlength=len(BUCKETS))
    return tuple(float(c) / len(found) for c in counts)


Row = tuple[str, int, dict[str, tuple[float, ...]]]  # name, cases with a gold, shares per signal


def rows(dump: Dump) -> list[Row]:
    """One row per synthetic task kind, all synthetic cases, each authored file and all authored
    cases: its name, its cases with a gold candidate, and the bucket shares per signal."""
    columns = {signal: dump.features.index(signal) for signal in SIGNALS}

    def row(name: str, cases: Sequence[DumpedCase]) -> Row:
        with_gold = [case for case in cases if case.gold.any()]
        return (
            name,
            len(with_gold),
            {s: shares([gold_rank(case, k) for case in with_gold]) for s, k in columns.items()},
        )

    kinds = sorted({case.kind for case in dump.synthetic})
    found = [row(f"synthetic {k}", [c for c in dump.synthetic if c.kind == k]) for k in kinds]
    found.append(row("synthetic, all", dump.synthetic))
    found += [row(name, cases) for name, cases in sorted(dump.authored.items())]
    if dump.authored:
        found.append(row("authored, all", [c for cases in dump.authored.values() for c in cases]))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Where the gold ranks by the words alone and by meaning alone, synthetic "
        "cases against authored ones, from a `train --dump` file."
    )
    parser.add_argument("dump", type=Path, help="the file `train --dump` wrote")
    args = parser.parse_args(argv)
    try:
        dump = load(args.dump)
    except (OSError, ValueError, KeyError) as exc:
        parser.error(f"{args.dump}: not a dump ({exc})")
    missing = [s for s in SIGNALS if s not in dump.features]
    if missing:
        parser.error(f"{args.dump}: the dump has no feature {', '.join(missing)}")
    heads = " | ".join(f"{s}: " + " / ".join(BUCKETS) for s in SIGNALS)
    print(f"{'cases':32s} {'n':>6s} | {heads}")
    for name, count, found in rows(dump):
        cells = " | ".join(
            " " * (len(s) + 2) + " / ".join(f"{x:.2f}" for x in found[s]) for s in SIGNALS
        )
        print(f"{name:32s} {count:6d} | {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
