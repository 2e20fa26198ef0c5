"""Sentence vectors of all-MiniLM-L6-v2 (Apache-2.0) read in context: what a whole request
means, word order and all, beside the static word vectors of `core/vectors.py`, which read each
word alone.

The model runs as an int8 ONNX graph (`data/encoder.onnx`, built from the pinned model by
`make encoder`) that returns the normalised mean of its last layer, as sentence-transformers
makes it, with the model's own tokenizer. A request's first `REQUEST_PIECES` pieces are read
(the time to read grows with the length). Operations are read when a spec is loaded, and kept
with its index; each distinct operation text's vector is kept too, so that a spec reloaded
beside others, or a training run, reads each text once.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np
from cachetools import LRUCache

DATA = Path(__file__).resolve().parent.parent / "data"
MODEL_FILE = DATA / "encoder.onnx"
TOKENIZER_FILE = DATA / "encoder-tokenizer.json"
DIMENSIONS = 384
REQUEST_PIECES = 64  # the cost of reading a request grows with its length: p95 stays in budget
OPERATION_PIECES = 128
KEPT = 30_000  # operation texts whose vectors are kept (1.5 KB each): a corpus of 200 APIs
# a spec's operations are read on this many threads (one session, one core each)
READERS = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
PARALLEL_FROM = 32  # texts: fewer are read faster than threads start


class Encoder:
    def __init__(self, model: Path = MODEL_FILE, tokenizer: Path = TOKENIZER_FILE) -> None:
        import onnxruntime  # type: ignore[import-untyped]
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        # one thread each: predictions are served side by side, and a short request is read
        # faster alone than split across threads
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        # keyed by a digest of the text: kept texts can be saved and found again next run
        self._kept: LRUCache[bytes, np.ndarray] = LRUCache(KEPT)
        self._lock = threading.Lock()
        self.reads = 0  # operation texts read so far (not requests): whether to save

    def embed(self, text: str, pieces: int = REQUEST_PIECES) -> np.ndarray:
        """A request's sentence vector (unit length), from its first `pieces` pieces. Not
        kept: requests seldom come twice, and an editor sends one per keystroke."""
        return self._read(text, pieces)

    def embed_soon(self, text: str, pieces: int = REQUEST_PIECES) -> Callable[[], np.ndarray]:
        """`embed`, started now on another core while the caller does its other work; call
        the result for the vector (the same vector `embed` gives). When every reader thread is
        busy with other requests, the text is read in the caller's thread when it is wanted:
        never later than `embed` would have been, but for a thread's hand-off."""
        pool = _request_readers()
        ids = self._pieces(text, pieces)
        if pool is None:
            return lambda: self._run(ids)
        pending = pool.submit(self._run, ids)

        def vector() -> np.ndarray:
            if pending.cancel():  # not started yet: no core was free
                return self._run(ids)
            return pending.result()

        return vector

    def embed_many(self, texts: list[str], pieces: int = OPERATION_PIECES) -> np.ndarray:
        """Operations' sentence vectors, one row each; each distinct text is read once, and
        texts not kept yet are read on every core (onnxruntime lets go of the GIL while it
        runs, and each text is still read alone, so the vectors do not depend on it)."""
        keys = {text: text_key(text, pieces) for text in texts}
        with self._lock:
            known = {text: self._kept.get(key) for text, key in keys.items()}
        missing = [text for text, vector in known.items() if vector is None]
        if len(missing) >= PARALLEL_FROM and READERS > 1:
            with ThreadPoolExecutor(READERS, thread_name_prefix="encoder") as pool:
                read = list(pool.map(lambda text: self._read(text, pieces), missing))
        else:
            read = [self._read(text, pieces) for text in missing]
        with self._lock:
            self.reads += len(missing)
            for text, vector in zip(missing, read, strict=True):
                known[text] = self._kept[keys[text]] = vector
        rows = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for i, text in enumerate(texts):
            rows[i] = known[text]
        return rows

    def kept(self) -> tuple[np.ndarray, np.ndarray]:
        """The texts' vectors kept, as (keys, vectors) arrays: what `remember` takes back."""
        with self._lock:
            items = list(self._kept.items())
        keys = np.frombuffer(b"".join(k for k, _ in items), dtype=np.uint8)
        vectors = np.stack([v for _, v in items]) if items else np.zeros((0, DIMENSIONS))
        return keys.reshape(len(items), KEY_BYTES), vectors.astype(np.float32)

    def remember(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Vectors of texts read before (`kept`, saved by an earlier run)."""
        if keys.shape != (len(vectors), KEY_BYTES) or vectors.shape[1:] != (DIMENSIONS,):
            raise ValueError("not a table of sentence vectors of this model")
        with self._lock:
            for key, vector in zip(keys, vectors, strict=True):
                self._kept.setdefault(key.tobytes(), np.asarray(vector, dtype=np.float32))

    def _read(self, text: str, pieces: int) -> np.ndarray:
        # one text at a time: the int8 graph scales its activations by what it is given, so
        # a text read beside others would come out a little different (cosine ~0.99) and an
        # operation's vector would depend on which spec it was loaded with; padding buys
        # little at these lengths
        return self._run(self._pieces(text, pieces))

    def _pieces(self, text: str, pieces: int) -> list[int]:
        ids: list[int] = self._tokenizer.encode(text).ids
        if len(ids) > pieces:  # keep the closing [SEP]
            ids = [*ids[: pieces - 1], ids[-1]]
        return ids

    def _run(self, ids: list[int]) -> np.ndarray:
        feed = {
            "input_ids": np.array([ids], dtype=np.int64),
            "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
        }
        (vectors,) = self._session.run(None, feed)
        return np.asarray(vectors[0], dtype=np.float32)


KEY_BYTES = 16


def text_key(text: str, pieces: int) -> bytes:
    """What a text's vector is kept under: a digest of the text and how much of it is read."""
    return hashlib.blake2b(f"{pieces}\0{text}".encode(), digest_size=KEY_BYTES).digest()


_folder = DATA  # where the shared encoder's model is: the shipped one but while `model_in`


@contextmanager
def model_in(folder: Path | None) -> Iterator[None]:
    """Meanwhile, the shared encoder is the model in `folder` (its `encoder.onnx` and
    `encoder-tokenizer.json`; None: the shipped one). Training reads each fold's requests with
    a model that was not tuned on them."""
    global _folder
    before, _folder = _folder, folder or DATA
    try:
        yield
    finally:
        _folder = before


def model_digest() -> str:
    """The model and tokenizer a vector comes from: vectors of another are never reused."""
    return _digest(_folder)


@cache
def _digest(folder: Path) -> str:
    digest = hashlib.sha256((folder / MODEL_FILE.name).read_bytes())
    digest.update((folder / TOKENIZER_FILE.name).read_bytes())
    return digest.hexdigest()[:16]


@cache
def _request_readers() -> ThreadPoolExecutor | None:
    """Threads that read requests beside the ranking's other work (onnxruntime lets go of the
    GIL while it runs); none on a single core, where that only adds a hand-off."""
    return ThreadPoolExecutor(READERS, thread_name_prefix="request") if READERS > 1 else None


def encoder() -> Encoder:
    """The shared encoder, loaded on first use (about a third of a second)."""
    return _encoder(_folder)


@cache
def _encoder(folder: Path) -> Encoder:
    model = folder / MODEL_FILE.name
    if not model.is_file():
        raise FileNotFoundError(f"{model}: no sentence model there (`make encoder` builds it)")
    return Encoder(model, folder / TOKENIZER_FILE.name)
