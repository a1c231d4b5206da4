"""The web console at ``/ui``: plain HTML, CSS and one small script, no build step.

The three files beside this module are shipped in the wheel (package data).
They carry no data: the page is a login form until an API key is entered,
and everything it shows comes from the local API called with that key
(kept in the browser's ``sessionStorage``, so once per browser session).
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

__all__ = ["ASSETS", "add_console_routes"]

#: The console's files and their content types.
ASSETS = {
    "index.html": "text/html",
    "console.css": "text/css",
    "console.js": "text/javascript",
}

_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


def _asset(name: str) -> web.Response:
    data = resources.files(__name__).joinpath(name).read_bytes()
    return web.Response(body=data, content_type=ASSETS[name], charset="utf-8", headers=_HEADERS)


async def handle_ui_root(request: web.Request) -> web.Response:
    return web.Response(status=302, text="see /ui/\n", headers={"Location": "/ui/"})


async def handle_ui_index(request: web.Request) -> web.Response:
    return _asset("index.html")


async def handle_ui_asset(request: web.Request) -> web.Response:
    name = request.match_info["file"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return _asset(name)


def add_console_routes(app: web.Application) -> None:
    app.router.add_get("/ui", handle_ui_root, name="ui")
    app.router.add_get("/ui/", handle_ui_index, name="ui_index")
    app.router.add_get("/ui/{file}", handle_ui_asset, name="ui_asset")
