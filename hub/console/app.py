"""The console's application factory: middleware, error pages and the routers."""

from __future__ import annotations

from threading import Event

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.middleware.sessions import SessionMiddleware

from hub.config import Settings
from hub.console.auth import session_secret
from hub.console.deps import Console, LoginRequired, page_user, render
from hub.store.db import engine_for, side_engine
from hub.workspace import Workspace

SESSION_COOKIE = "cebhub_session"
SESSION_HOURS = 12


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def create_app(ws: Workspace, settings: Settings, *, wakeup: Event | None = None) -> FastAPI:
    """The console and API over one workspace; `wakeup` nudges a running hub after uploads."""
    from hub.console import api, lists_web, ops, web

    app = FastAPI(
        title="cebhub API",
        version="1",
        description="Submit CEB messages, query orders and lists, declare, and pull feeds.",
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    # The console's threads keep off the connection the hub's main thread writes on.
    app.state.console = Console(ws, settings, side_engine(engine_for(settings, ws)), wakeup)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(ws),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_HOURS * 3600,
        same_site="strict",  # with the CSRF token: cross-site posts never carry the session
    )

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={_quote(target)}", 303)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        if _is_api(request) or request.url.path in ("/openapi.json", "/docs"):
            return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
        try:
            who = page_user(request)
        except LoginRequired:
            who = None
        return render(request, "error.html", who, exc.status_code, message=exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        if _is_api(request):
            return JSONResponse({"detail": jsonable_encoder(exc.errors())}, 422)
        return render(request, "error.html", None, 400, message="请求参数有误 bad request")

    app.include_router(web.router)
    app.include_router(lists_web.router)
    app.include_router(api.router)
    app.include_router(ops.router)  # /metrics, /healthz, /readyz and the ops dashboard
    return app


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")
