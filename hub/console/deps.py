"""What every route needs: the app's state, who is calling, CSRF checks and templates."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from threading import Event
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from hub.config import Settings
from hub.console import labels
from hub.console.auth import Principal, principal_for_token, user_by_id
from hub.workspace import Workspace

TEMPLATES = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES))
templates.env.globals.update(field_label=labels.field, status_label=labels.status)


@dataclass
class Console:
    """The state the routes share, kept on `app.state.console`."""

    ws: Workspace
    settings: Settings
    engine: Engine
    wakeup: Event | None = None  # set after an upload so a running hub looks at once
    _processor: Any = field(default=None, repr=False)
    _router: Any = field(default=None, repr=False)

    @property
    def router(self):
        """Routing and receipts, signed like the hub's own (lists' lifecycle needs it)."""
        if self._router is None:
            from hub.routing import Router
            from hub.runner import envelope_signer

            self._router = Router(
                self.settings, sign_envelope=envelope_signer(self.ws), root=self.ws.root
            )
        return self._router

    @property
    def processor(self):
        """The pipeline, for messages that arrive over HTTP."""
        if self._processor is None:
            from hub.pipeline import Processor
            from hub.runner import build_stages

            stages = build_stages(self.ws, self.settings)
            self._processor = Processor(self.settings, stages, self.router)
        return self._processor


class LoginRequired(Exception):
    """A page was asked for without a session: the handler redirects to the login form."""


def console(request: Request) -> Console:
    return request.app.state.console


def page_user(request: Request) -> Principal:
    uid = request.session.get("uid")
    who = user_by_id(console(request).engine, uid) if isinstance(uid, int) else None
    if who is None:
        request.session.pop("uid", None)
        raise LoginRequired()
    return who


def api_user(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    who = None
    if scheme.lower() == "bearer" and token.strip():
        who = principal_for_token(console(request).engine, token.strip())
    if who is None:
        raise HTTPException(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})
    return who


PageUser = Annotated[Principal, Depends(page_user)]  # a logged-in console user, else login
ApiUser = Annotated[Principal, Depends(api_user)]  # a bearer-token caller, else 401


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


async def checked_form(request: Request) -> Any:
    """The posted form, after its CSRF token matched the session's; 403 otherwise."""
    form = await request.form()
    sent = form.get("csrf")
    expected = request.session.get("csrf")
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise HTTPException(403, "the form's CSRF token is missing or wrong; reload the page")
    return form


def render(request: Request, name: str, who: Principal | None, status_code: int = 200, **ctx):
    ctx.update(who=who, csrf=csrf_token(request), path=request.url.path)
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


def nudge(request: Request) -> None:
    """Tell a running hub there is work (deliveries, reviews) now rather than at its next poll."""
    wakeup = console(request).wakeup
    if wakeup is not None:
        wakeup.set()


def not_found() -> HTTPException:
    # The same answer for "does not exist" and "not yours": ids reveal nothing.
    return HTTPException(404, "not found")
