"""The spec store: an in-memory TTL cache (L1) in front of a TinyDB index and one file per
parsed spec (L2).

It keeps parsed, normalised specs keyed by source and content hash, so a warm start skips
parsing. TinyDB holds the small index (source, hash, times, ETag, which file); each parsed spec
is a JSON file of its own, named by its source and content, so storing one spec never rewrites
the others (a workspace of hundreds of specs loads in linear time). TinyDB is neither thread-
nor process-safe, so every index access holds a file lock, and every write goes to a temporary
file that replaces the old one atomically. An index that cannot be read is moved aside as
`*.corrupt` and the store starts afresh; a spec file that cannot be read is a miss. Prompts are
never stored here.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import pickle
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np
from cachetools import TTLCache
from filelock import FileLock
from pydantic import BaseModel
from tinydb import Query, TinyDB
from tinydb.storages import Storage

from opensesame_predictor.core.specs import ParsedSpec

log = logging.getLogger(__name__)

# Bump when ParsedSpec or Operation change shape or meaning: older entries then read as misses.
STORE_FORMAT = 11
TABLE = "specs"


class StoredSpec(BaseModel):
    source: str
    content_hash: str
    stored_at: float
    etag: str | None = None
    last_modified: str | None = None
    format: int = STORE_FORMAT
    parsed: ParsedSpec

    @property
    def blob(self) -> str:
        """The file of the parsed spec: by source and content, so a change is a new file."""
        source = hashlib.sha256(self.source.encode()).hexdigest()[:24]
        return f"{source}-{self.content_hash[:16]}-v{self.format}.json"


@dataclass
class StoreStats:
    l1_hits: int = 0
    l2_hits: int = 0
    misses: int = 0
    writes: int = 0
    stale_served: int = 0
    quarantined: int = 0

    @property
    def hit_ratio(self) -> float:
        lookups = self.l1_hits + self.l2_hits + self.misses
        return (self.l1_hits + self.l2_hits) / lookups if lookups else 0.0


class CorruptStoreError(Exception):
    pass


def _is_table(table: Any) -> bool:
    """TinyDB's layout: a table maps integer document ids (as strings) to JSON objects;
    anything else makes TinyDB fail later with a ValueError or TypeError."""
    return isinstance(table, dict) and all(
        isinstance(doc_id, str) and doc_id.isdigit() and isinstance(doc, dict)
        for doc_id, doc in table.items()
    )


def _private_directory(directory: Path) -> Path | None:
    """The folder, created or tightened to be this user's only (0700); None when it belongs
    to someone else, so nothing in it is trusted."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    stat = directory.lstat()
    if directory.is_symlink() or stat.st_uid != os.getuid():
        log.warning("not using %s: it is not this user's own folder", directory)
        return None
    if stat.st_mode & 0o077:
        directory.chmod(0o700)
    return directory


def _write_atomically(path: Path, content: bytes | Callable[[BinaryIO], object]) -> None:
    """Write through a temporary file that replaces the target at once: a reader or a crash
    sees the old file or the new one, never half of one. Only this user may read it. `content`
    is the bytes, or what writes them to a file (a large pickle is streamed, not held twice)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
            if isinstance(content, bytes):
                handle.write(content)
            else:
                content(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class _AtomicJSONStorage(Storage):
    """TinyDB storage that reads strictly and writes through a temporary file + os.replace."""

    # The last parse of each file, by (inode, mtime, size): every write replaces the file, so an
    # unchanged signature means unchanged content and a warm start parses the file only once.
    _parsed: ClassVar[dict[Path, tuple[tuple[int, int, int], dict[str, dict[str, Any]]]]] = {}

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, dict[str, Any]] | None:
        try:
            stat = self.path.stat()
            signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            cached = self._parsed.get(self.path)
            if cached is not None and cached[0] == signature:
                return cached[1]
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise CorruptStoreError(str(exc)) from exc
        if not text.strip():
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CorruptStoreError(f"invalid JSON: {exc}") from exc
        except RecursionError:
            raise CorruptStoreError("JSON nested too deeply") from None
        if not isinstance(data, dict) or not all(_is_table(t) for t in data.values()):
            raise CorruptStoreError("not a TinyDB document")
        self._parsed[self.path] = (signature, data)
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        _write_atomically(self.path, json.dumps(data, separators=(",", ":")).encode())

    def close(self) -> None:
        pass


LEFTOVER_SECONDS = 600.0  # a temporary file this old was left by a writer that died
EVICT_EVERY = 32  # writes between two checks of the store's size


class SpecStore:
    """Parsed specs by source. `get` answers with fresh or stale entries; callers decide.

    The store keeps itself small: entries not stored or revalidated for `max_age_seconds` go
    (a stale copy of a URL serves while a refetch fails, so not at once), the oldest go first
    when the spec files exceed `max_bytes`, and temporary or unreferenced files that a killed
    writer left behind are removed when the store opens."""

    def __init__(
        self,
        path: Path | None,
        ttl_seconds: float = 3600.0,
        clock: Callable[[], float] = time.time,
        l1_size: int = 256,
        max_bytes: int = 512 * 1024 * 1024,
        max_age_seconds: float = 7 * 24 * 3600.0,
    ) -> None:
        self.path = path
        self.ttl = ttl_seconds
        self.clock = clock
        self.max_bytes = max_bytes
        self.max_age = max_age_seconds
        self._writes_since_check = 0
        self.stats = StoreStats()
        self._l1: TTLCache[str, StoredSpec] = TTLCache(l1_size, ttl_seconds, timer=clock)
        self._mutex = threading.Lock()
        self._l1_mutex = threading.Lock()  # cachetools caches are not thread-safe
        self._lock = FileLock(f"{path}.lock", timeout=30) if path else None
        # the parsed specs, one file each, beside the index
        self.blobs = path.with_name(f"{path.stem}-specs") if path else Path()
        if path:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.blobs.mkdir(mode=0o700, exist_ok=True)
            self.tidy()

    def is_fresh(self, entry: StoredSpec) -> bool:
        return self.clock() - entry.stored_at < self.ttl

    def get(self, source: str, content_hash: str | None = None) -> StoredSpec | None:
        """The entry for `source` (matching `content_hash` when given), fresh or stale."""
        with self._l1_mutex:
            entry = self._l1.get(source)
        if entry is not None and (content_hash is None or entry.content_hash == content_hash):
            self.stats.l1_hits += 1
            return entry
        entry = self._read(source)
        if entry is not None and (content_hash is None or entry.content_hash == content_hash):
            self.stats.l2_hits += 1
            if self.is_fresh(entry):
                with self._l1_mutex:
                    self._l1[source] = entry
            return entry
        self.stats.misses += 1
        return None

    def put(self, entry: StoredSpec) -> None:
        with self._l1_mutex:
            self._l1[entry.source] = entry
        if self.path is None:
            return
        blob = self.blobs / entry.blob
        if not blob.exists():  # same source, same content: the file is already there
            _write_atomically(blob, entry.parsed.model_dump_json().encode())
        document = entry.model_dump(mode="json", exclude={"parsed"}) | {"blob": entry.blob}
        with self._locked() as db:
            table = db.table(TABLE)
            previous = table.get(Query().source == entry.source)
            if isinstance(previous, dict):
                table.update(document, doc_ids=[previous.doc_id])
            else:
                table.insert(document)
        if isinstance(previous, dict) and previous.get("blob") not in (None, entry.blob):
            (self.blobs / Path(str(previous["blob"])).name).unlink(missing_ok=True)
        self.stats.writes += 1
        self._writes_since_check += 1
        if self._writes_since_check >= EVICT_EVERY:
            self.evict()

    def tidy(self) -> None:
        """Remove what killed writers left (temporary files, spec files no entry names),
        then evict."""
        if self.path is None:
            return
        cutoff = time.time() - LEFTOVER_SECONDS  # file times are wall-clock times
        with self._locked() as db:
            named = {str(doc.get("blob")) for doc in db.table(TABLE).all()}
            for folder, pattern in ((self.path.parent, ".*.tmp"), (self.blobs, "*")):
                for leftover in folder.glob(pattern):
                    unused = folder == self.path.parent or leftover.name not in named
                    try:
                        if unused and leftover.lstat().st_mtime < cutoff and leftover.is_file():
                            leftover.unlink()
                    except OSError:
                        continue
        self.evict()

    def evict(self) -> int:
        """Drop entries too old to serve even as a stale copy, then the oldest ones while the
        spec files take more than `max_bytes`. Returns how many went."""
        self._writes_since_check = 0
        if self.path is None:
            return 0
        now = self.clock()
        with self._locked() as db:
            table = db.table(TABLE)
            entries = sorted(table.all(), key=lambda doc: float(doc.get("stored_at", 0.0)))
            sizes = {}
            for doc in entries:
                try:
                    sizes[doc.doc_id] = (
                        (self.blobs / Path(str(doc.get("blob"))).name).stat().st_size
                    )
                except OSError:
                    sizes[doc.doc_id] = 0
            total = sum(sizes.values())
            gone = []
            for doc in entries:
                too_old = self.max_age > 0 and now - float(doc.get("stored_at", 0.0)) > self.max_age
                if too_old or total > self.max_bytes:
                    gone.append(doc)
                    total -= sizes[doc.doc_id]
            if gone:
                table.remove(doc_ids=[doc.doc_id for doc in gone])
        for doc in gone:
            (self.blobs / Path(str(doc.get("blob"))).name).unlink(missing_ok=True)
            with self._l1_mutex:
                self._l1.pop(str(doc.get("source")), None)
        if gone:
            log.info("store: evicted %d old or surplus entries", len(gone))
        return len(gone)

    def touch(self, entry: StoredSpec) -> StoredSpec:
        """Mark an entry fresh again (a 304 revalidation)."""
        renewed = entry.model_copy(update={"stored_at": self.clock()})
        self.put(renewed)
        return renewed

    def sources(self) -> list[str]:
        if self.path is None:
            with self._l1_mutex:
                return list(self._l1.keys())
        with self._locked() as db:
            return [str(doc.get("source")) for doc in db.table(TABLE).all()]

    def _read(self, source: str) -> StoredSpec | None:
        if self.path is None:
            return None
        with self._locked() as db:
            document = db.table(TABLE).get(Query().source == source)
        if not isinstance(document, dict) or document.get("format") != STORE_FORMAT:
            return None
        name = Path(str(document.get("blob") or "")).name
        blob = self.blobs / (name or "-")
        try:
            parsed = ParsedSpec.model_validate_json(blob.read_bytes())
            return StoredSpec.model_validate({**document, "parsed": parsed})
        except (OSError, ValueError) as exc:  # a missing or damaged file is a miss
            log.warning("store entry for %s is unreadable (%s); it will be rebuilt", source, exc)
            blob.unlink(missing_ok=True)
            return None

    def _locked(self) -> _LockedDB:
        assert self.path is not None and self._lock is not None
        return _LockedDB(self)

    def quarantine(self, reason: str) -> None:
        """Move a corrupt file aside (caller holds the lock) so the store can start afresh."""
        assert self.path is not None
        target = self.path.with_name(self.path.name + ".corrupt")
        if target.exists():
            target = self.path.with_name(f"{self.path.name}.{int(self.clock())}.corrupt")
        os.replace(self.path, target)
        self.stats.quarantined += 1
        log.warning("store file %s was corrupt (%s); moved to %s", self.path, reason, target)


class _LockedDB:
    """Context manager: hold the thread and file locks, open TinyDB, recover from corruption."""

    def __init__(self, store: SpecStore) -> None:
        self.store = store

    def __enter__(self) -> TinyDB:
        store = self.store
        assert store.path is not None and store._lock is not None
        store._mutex.acquire()
        try:
            store._lock.acquire()
            try:
                storage = _AtomicJSONStorage(str(store.path))
                storage.read()
            except CorruptStoreError as exc:
                store.quarantine(str(exc))
            self.db = TinyDB(str(store.path), storage=_AtomicJSONStorage)
            return self.db
        except BaseException:
            self._release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            self.db.close()
        finally:
            self._release()

    def _release(self) -> None:
        store = self.store
        if store._lock is not None and store._lock.is_locked:
            store._lock.release()
        store._mutex.release()


class VectorCache:
    """The sentence model's vectors of operation texts read before, saved beside the index
    cache: a catalog whose specs partly changed since the last run reads only the operations
    that changed. Plain numpy arrays (never pickles), in this user's private folder; a file
    that fails to load is ignored and rewritten."""

    def __init__(self, directory: Path | None, model: str) -> None:
        self.path = (
            private / f"sentences-{model}.npz"
            if directory is not None and (private := _private_directory(directory)) is not None
            else None
        )

    def load(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self.path is None:
            return None
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                return saved["keys"], saved["vectors"]
        except FileNotFoundError:
            return None
        except Exception as exc:  # damaged or of another layout: rebuilt, never fatal
            log.info("sentence vectors %s unreadable (%s); reading again", self.path.name, exc)
            self.path.unlink(missing_ok=True)
            return None

    def save(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        if self.path is None:
            return
        table = io.BytesIO()
        np.savez(table, keys=keys, vectors=vectors)
        try:
            _write_atomically(self.path, table.getvalue())  # several workers: the last wins
        except OSError as exc:
            log.info("could not write sentence vectors %s: %s", self.path.name, exc)


class IndexCache:
    """Built predictor indexes, pickled beside the store so that a restart skips tokenising and
    indexing (as jedi and mypy cache their work). Keyed by the catalog's content and the code's
    version; only files this user owns and no one else may write are read; a file that fails to
    load is ignored and rebuilt; the newest few are kept."""

    def __init__(self, directory: Path | None, keep: int = 8) -> None:
        self.directory = _private_directory(directory) if directory is not None else None
        self.keep = keep
        if self.directory is not None:  # what a writer killed mid-write left behind
            cutoff = time.time() - LEFTOVER_SECONDS
            for leftover in self.directory.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    if leftover.lstat().st_mtime < cutoff:
                        leftover.unlink()

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / f"index-{key}.pickle"

    def get(self, key: str) -> object | None:
        if self.directory is None:
            return None
        path = self._path(key)
        try:
            # never through a symlink: a pickle runs code, so only our own file is read
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(descriptor, "rb") as handle:
                stat = os.fstat(descriptor)
                if stat.st_uid != os.getuid() or stat.st_mode & 0o022:
                    log.warning("ignoring index cache %s: not private to this user", path)
                    return None
                value: object = pickle.load(handle)  # our own file in our own private folder
            return value
        except FileNotFoundError:
            return None
        except Exception as exc:  # a stale or damaged cache is rebuilt, never fatal
            log.info("index cache %s unreadable (%s); rebuilding", path.name, exc)
            path.unlink(missing_ok=True)
            return None

    def put(self, key: str, value: object) -> None:
        if self.directory is None:
            return
        path = self._path(key)
        try:
            _write_atomically(
                path, lambda out: pickle.dump(value, out, protocol=pickle.HIGHEST_PROTOCOL)
            )
        except OSError as exc:
            log.info("could not write index cache %s: %s", path.name, exc)
        files = sorted(self.directory.glob("index-*.pickle"), key=lambda p: p.stat().st_mtime)
        for old in files[: -self.keep]:
            old.unlink(missing_ok=True)
