"""A language-server session over stdio: `python -m opensesame_predictor lsp`, driven by the
pytest-lsp client, with helpers to open documents and wait for indexing."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

INDEX_TIMEOUT = 15.0  # seconds; generous for a loaded CI machine, never reached when it works


def plain(value: Any) -> Any:
    """pygls hands unknown notifications' params over as namedtuples: back to JSON shapes."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


class Session:
    """One client connected to one server process."""

    def __init__(self, client: LanguageClient, root: Path) -> None:
        self.client = client
        self.root = root
        self.registrations: list[types.Registration] = []
        self.indexed: list[dict[str, Any]] = []

    async def wait_indexed(self, count: int = 1) -> dict[str, Any]:
        """Until the server has finished `count` indexing runs (its custom notification)."""
        async with asyncio.timeout(INDEX_TIMEOUT):
            while len(self.indexed) < count:
                await asyncio.sleep(0.02)
        return self.indexed[-1]

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(INDEX_TIMEOUT):
            while not condition():
                await asyncio.sleep(0.02)

    def open(self, name: str, text: str, language_id: str) -> str:
        path = self.root / name
        path.write_text(text)
        uri = path.as_uri()
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id=language_id, version=1, text=text
                )
            )
        )
        return uri

    async def complete(self, uri: str, line: int, character: int) -> types.CompletionList:
        result = await self.client.text_document_completion_async(
            types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=line, character=character),
            )
        )
        assert isinstance(result, types.CompletionList), result
        return result


Starter = Callable[..., Awaitable[Session]]


@pytest_asyncio.fixture
async def lsp(tmp_path: Path) -> AsyncIterator[Starter]:
    """Starts sessions: `await lsp(specs=[...], client="visual-studio-code", ...)`."""
    started: list[Session] = []

    async def start(
        specs: list[str] | None = None,
        client: str = "visual-studio-code",
        init_options: Any = None,
        folders: list[Path] | None = None,
        configuration: dict[str, Any] | None = None,
    ) -> Session:
        command = [sys.executable, "-m", "opensesame_predictor", "lsp"]
        for spec in specs or []:
            command += ["--spec", spec]
        lsp_client = await ClientServerConfig(server_command=command).start()
        assert isinstance(lsp_client, LanguageClient)
        root = tmp_path / "docs"
        root.mkdir(exist_ok=True)
        session = Session(lsp_client, root)
        started.append(session)
        if configuration is not None:
            lsp_client.set_configuration(configuration)

        @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
        def register(params: types.RegistrationParams) -> None:
            session.registrations.extend(params.registrations)

        @lsp_client.feature("opensesame/indexed")
        def indexed(params: Any) -> None:
            session.indexed.append(plain(params))

        workspace_folders = [
            types.WorkspaceFolder(uri=f.as_uri(), name=f.name) for f in (folders or [])
        ]
        await lsp_client.initialize_session(
            types.InitializeParams(
                capabilities=client_capabilities(client),
                initialization_options=init_options,
                workspace_folders=workspace_folders or None,
                root_uri=workspace_folders[0].uri if workspace_folders else None,
            )
        )
        return session

    yield start
    for session in started:
        await session.client.shutdown_session()
        await session.client.stop()


@pytest.fixture
def petstore(fixtures: Path) -> str:
    return str(fixtures / "petstore-3.0.yaml")
