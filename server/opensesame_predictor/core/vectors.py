"""Static word vectors, for what words mean beyond their letters ('picture' near 'image').

The table is all-MiniLM-L6-v2 distilled into one vector per WordPiece of its vocabulary (model2vec,
256 dimensions, int8 with a scale per row), then refitted so that a text's mean vector comes close
to the model's own vector of the whole text (`offline/vectors_fit.py`); a text's vector is the
normalised mean of its pieces' vectors. It loads with numpy alone and embeds a prompt in well
under a millisecond. `make vectors` rebuilds it (`distill.py`); it is data, read once.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from opensesame_predictor.core.features import stem, words

VECTORS_FILE = Path(__file__).resolve().parent.parent / "data" / "vectors.npz"
MAX_WORD = 60  # longer "words" are ids or junk: no meaning to look up


class Vectors:
    def __init__(self, path: Path = VECTORS_FILE) -> None:
        with np.load(path, allow_pickle=False) as data:
            pieces = [str(p) for p in data["pieces"]]
            self.table = data["vectors"]  # int8, pieces x dimensions
            self.scales = data["scales"].astype(np.float32)
        self.index = {piece: i for i, piece in enumerate(pieces)}
        self.pieces_list = pieces
        self._words: tuple[list[str], np.ndarray] | None = None  # for `neighbours`, on demand
        self.dimensions = int(self.table.shape[1])

    def pieces(self, word: str) -> list[int]:
        """WordPiece, longest match first, as the model's tokenizer splits a lower-case word;
        a word with a part it cannot split contributes nothing."""
        found: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.index:
                    found.append(self.index[piece])
                    break
                end -= 1
            else:
                return []
            start = end
        return found

    def embed(self, text: str) -> np.ndarray:
        """The normalised mean vector of the text's words (zeros when none is known)."""
        ids = [i for w in words(text) if 1 < len(w) <= MAX_WORD for i in self._pieces(w)]
        if not ids:
            return np.zeros(self.dimensions, dtype=np.float32)
        chosen = np.array(ids, dtype=np.int64)
        total = (self.table[chosen].astype(np.float32) * self.scales[chosen, None]).sum(axis=0)
        norm = float(np.linalg.norm(total))
        embedded: np.ndarray = (total / norm if norm > 0 else total).astype(np.float32)
        return embedded

    def embed_many(self, texts: list[str], dtype: type = np.float32) -> np.ndarray:
        """One row per text, filled in place: a list of rows would double the memory."""
        rows: np.ndarray = np.zeros((len(texts), self.dimensions), dtype=dtype)
        for i, text in enumerate(texts):
            rows[i] = self.embed(text)
        return rows

    def _pieces(self, word: str) -> tuple[int, ...]:
        return _cached_pieces(self, word)

    def neighbours(self, word: str, count: int = 2, least: float = 0.6) -> list[str]:
        """Whole words closest in meaning to a word ('picture' -> 'photo', 'image'), other
        forms of the word itself left out; for rewording synthetic requests."""
        if self._words is None:
            kept = [i for i, p in enumerate(self.pieces_list) if p.isalpha() and len(p) > 2]
            rows = self.table[kept].astype(np.float32) * self.scales[kept, None]
            rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)
            self._words = ([self.pieces_list[i] for i in kept], rows)
        names, rows = self._words
        position = self.index.get(word)
        if position is None or not word.isalpha():
            return []
        query = self.table[position].astype(np.float32)
        similarity = rows @ (query / max(float(np.linalg.norm(query)), 1e-9))
        found: list[str] = []
        for k in np.argsort(-similarity)[: 8 * count]:
            other = names[int(k)]
            if similarity[k] < least or len(found) == count:
                break
            if other[:4] != word[:4] and stem(other) != stem(word):  # not a form of it
                found.append(other)
        return found


@lru_cache(maxsize=65536)
def _cached_pieces(vectors: Vectors, word: str) -> tuple[int, ...]:
    return tuple(vectors.pieces(word))


_loaded: Vectors | None = None
_lock = threading.Lock()


def vectors() -> Vectors:
    """The shipped table, loaded once per process."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = Vectors()
        return _loaded
