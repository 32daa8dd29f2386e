"""The read API's documentation pages (``/krx/docs``, ``/krx/redoc``), served with no internet.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a machine without internet
``/krx/docs`` is a blank page. Here the pages are FastAPI's (``get_swagger_ui_html`` /
``get_redoc_html``, FastAPI's offline-docs recipe) and their JavaScript, CSS and favicon come from
the pinned ``fastapi-offline`` wheel, which ships them (``fastapi_offline/static``), under
``/krx/docs-assets/``. Like FastAPI's default pages, they and ``openapi.json`` need no login: they
only describe the API; every data route still does.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse

ASSETS_PATH = "/docs-assets"
#: Swagger UI / ReDoc files as the fastapi-offline wheel ships them.
ASSET_FILES = {"js": "swagger-ui-bundle.js", "css": "swagger-ui.css", "redoc": "redoc.standalone.js",
               "favicon": "favicon.png"}


def assets_directory() -> str:
    return str(files("fastapi_offline") / "static")


def install(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve ``docs_url`` and ``redoc_url`` of ``app`` from local files (create ``app`` with both set to None)."""
    if app.docs_url or app.redoc_url:
        raise ValueError("create the app with docs_url=None and redoc_url=None: these pages replace FastAPI's")
    app.mount(ASSETS_PATH, StaticFiles(directory=assets_directory()), name="docs-assets")
    redirect_url = app.swagger_ui_oauth2_redirect_url

    def asset(request: Request, name: str) -> str:
        # root_path is where the app is mounted (/krx in the api-server), "" when served on its own
        return f"{request.scope.get('root_path', '').rstrip('/')}{ASSETS_PATH}/{ASSET_FILES[name]}"

    def openapi_url(request: Request) -> str:
        return f"{request.scope.get('root_path', '').rstrip('/')}{app.openapi_url}"

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(openapi_url=openapi_url(request), title=f"{app.title} - Swagger UI",
                                   oauth2_redirect_url=f"{root}{redirect_url}" if redirect_url else None,
                                   swagger_js_url=asset(request, "js"), swagger_css_url=asset(request, "css"),
                                   swagger_favicon_url=asset(request, "favicon"),
                                   swagger_ui_parameters=app.swagger_ui_parameters)

    async def swagger_ui_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url(request), title=f"{app.title} - ReDoc",
                              redoc_js_url=asset(request, "redoc"), redoc_favicon_url=asset(request, "favicon"),
                              with_google_fonts=False)

    # Starlette routes, like FastAPI's own docs routes: outside the app's dependencies and schema.
    app.add_route(docs_url, swagger_ui, include_in_schema=False)
    if redirect_url:
        app.add_route(redirect_url, swagger_ui_redirect, include_in_schema=False)
    app.add_route(redoc_url, redoc, include_in_schema=False)
