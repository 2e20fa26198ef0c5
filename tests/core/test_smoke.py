from __future__ import annotations

from pathlib import Path

from opensesame_predictor.config import Settings
from opensesame_predictor.service import Service


def test_predicts_the_photo_upload_after_creating_a_pet(fixtures: Path) -> None:
    settings = Settings(specs=[str(fixtures / "petstore-3.0.yaml")])
    runtime = Service.from_settings(settings)
    result = runtime.predictor.predict(
        {"prompt": "upload a photo of the pet", "history": ["POST /pets"]}
    )
    assert result.predictions[0].api_call == "POST /pets/{petId}/photos"
    assert result.metadata.processing_method == "ml"
