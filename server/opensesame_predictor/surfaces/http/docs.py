"""/docs (Swagger UI) and /redoc served with no network: their scripts and styles come from
the `fastapi-offline` package, installed with the service, under ASSETS_PATH (FastAPI's
documented recipe for self-hosting the docs' assets). No page names another host: no CDN, no
web fonts, no remote favicon."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse

ASSETS_PATH = "/docs-assets"  # the API key rule of /docs covers it (auth.DOCS_AND_METRICS)
DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"


def assets_directory() -> str:
    """Swagger UI's and ReDoc's bundles as the `fastapi-offline` package ships them."""
    return str(files("fastapi_offline") / "static")


def install_docs(app: FastAPI) -> None:
    """The docs pages and their assets on an app made with `docs_url=None, redoc_url=None`."""
    app.mount(ASSETS_PATH, StaticFiles(directory=assets_directory()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_PATH}",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )

    app.add_api_route(DOCS_PATH, swagger_ui, include_in_schema=False, methods=["GET"])
    app.add_api_route(
        OAUTH2_REDIRECT_PATH, oauth2_redirect, include_in_schema=False, methods=["GET"]
    )
    app.add_api_route(REDOC_PATH, redoc, include_in_schema=False, methods=["GET"])
