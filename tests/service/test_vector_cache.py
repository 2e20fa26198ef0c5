"""The sentence model's vectors of operation texts are saved beside the index cache, so a run
whose catalog partly changed reads only the operations no earlier run read; a damaged file is
read again, never fatal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core import encoder as encoder_module
from opensesame_predictor.core.features import sentence_text
from opensesame_predictor.service import Service
from support import count_reads

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PETSTORE = FIXTURES / "petstore-3.0.yaml"
TASKS = FIXTURES / "tasks-3.1.json"


def start(folder: Path, *specs: Path) -> Service:
    settings = Settings(specs=[str(s) for s in specs], database_url=str(folder / "store.json"))
    return Service.from_settings(settings)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts the shared encoder reads from here on, starting from nothing kept (as a new
    process does)."""
    reader = encoder_module.encoder()
    monkeypatch.setattr(reader, "_kept", type(reader._kept)(encoder_module.KEPT))
    return count_reads(monkeypatch, reader)


def forget(reads: list[str]) -> None:
    """As a restart: nothing kept in memory, nothing read yet."""
    reader = encoder_module.encoder()
    reader._kept.clear()
    reads.clear()


def test_a_new_run_reads_only_the_operations_no_run_read_before(
    tmp_path: Path, reads: list[str]
) -> None:
    first = start(tmp_path, PETSTORE)
    pets = {sentence_text(op) for op in first.catalog.operations}
    assert pets <= set(reads)
    saved = list((tmp_path / "indexes").glob("sentences-*.npz"))
    assert len(saved) == 1
    fresh = dict(
        zip(
            [sentence_text(op) for op in first.catalog.operations],
            first.index_for(first.catalog).text.sentences,
            strict=True,
        )
    )

    forget(reads)
    second = start(tmp_path, PETSTORE, TASKS)  # another catalog: no index to reuse
    tasks = {sentence_text(op) for op in second.catalog.operations if op.spec != "petstore"}
    assert reads and set(reads) <= tasks  # the pets' operations were not read again
    again = second.index_for(second.catalog).text.sentences
    for op, vector in zip(second.catalog.operations, again, strict=True):
        if sentence_text(op) in fresh:  # the saved vector is the one read fresh, bit for bit
            assert np.array_equal(vector, fresh[sentence_text(op)])


def test_a_damaged_file_of_vectors_is_read_again_and_replaced(
    tmp_path: Path, reads: list[str]
) -> None:
    start(tmp_path, PETSTORE)
    (saved,) = (tmp_path / "indexes").glob("sentences-*.npz")
    saved.write_bytes(b"not an npz file")
    forget(reads)
    service = start(tmp_path, PETSTORE, TASKS)
    assert service.catalog.operations and reads  # read again, served as usual
    with np.load(saved, allow_pickle=False) as table:
        assert len(table["keys"]) == len(table["vectors"]) >= len(service.catalog.operations)


def test_vectors_of_another_shape_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a table of sentence vectors"):
        encoder_module.Encoder().remember(np.zeros((2, 16), np.uint8), np.zeros((2, 10)))
