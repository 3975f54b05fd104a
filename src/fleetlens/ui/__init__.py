"""The dashboard: a static single-page app (built from ``ui/`` into ``static/``) served by the API.

:func:`mount_ui` adds ``/ui/`` (the page), ``/ui/assets/`` (its JavaScript and CSS, content-hashed
names, cached for a year), a redirect from ``/`` to ``/ui/``, and ``/docs``: Swagger UI over the
OpenAPI document, from a vendored copy (no CDN). The page calls the API's own JSON
endpoints with the browser's session cookie; it needs nothing from the internet.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
INDEX = STATIC / "index.html"
# Swagger UI for /docs, vendored from the npm package swagger-ui-dist (scripts/build-ui.sh copies it):
# FastAPI's default /docs page would load it from a CDN.
APIDOCS = Path(__file__).parent / "apidocs"
APIDOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fleetlens query API</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/ui/assets/apidocs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/ui/assets/apidocs/swagger-ui-bundle.js"></script>
<script src="/ui/assets/apidocs/init.js"></script></body></html>
"""


class _Assets(StaticFiles):
    """Static files with a long cache: their names change whenever their content does."""

    async def get_response(self, path: str, scope) -> Response:  # type: ignore[override]
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def mount_ui(app: FastAPI) -> None:
    """Serve the dashboard from ``app`` under ``/ui/``; ``/`` redirects there."""
    if not INDEX.is_file():
        raise RuntimeError(f"the dashboard bundle is missing ({INDEX}); run scripts/build-ui.sh")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    @app.get("/ui", include_in_schema=False)
    def ui_no_slash() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    @app.get("/ui/", include_in_schema=False)
    def ui_index() -> FileResponse:
        return FileResponse(INDEX, media_type="text/html", headers={"Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    def api_docs() -> Response:
        return Response(APIDOCS_PAGE, media_type="text/html", headers={"Cache-Control": "no-cache"})

    # before /ui/assets: Starlette matches mounts in order
    app.mount("/ui/assets/apidocs", StaticFiles(directory=APIDOCS), name="ui-apidocs")
    app.mount("/ui/assets", _Assets(directory=STATIC / "assets"), name="ui-assets")
