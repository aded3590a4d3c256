"""The web console, served at / by `facegate serve`: server-rendered page shells (Jinja2) whose
small script (static/console.js) reads and writes through the same /v1 API as every other client,
authenticated by the console session (api/console/sessions.py). Nothing is fetched from outside
the service: no CDN, no fonts, no analytics. Not part of the OpenAPI schema."""

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from api.console.sessions import COOKIE, SIGN_IN_SCOPES
from api.deps import service
from db.admin import KeyInfo

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
static = StaticFiles(directory=HERE / "static")

# page -> (title, the key scopes that see it); audit keys see the log and reports only
PAGES = {
    "persons": ("Persons", ("admin",)),
    "enroll": ("Enroll", ("admin",)),
    "doors": ("Doors and keys", ("admin",)),
    "log": ("Access log", ("admin", "audit")),
    "try": ("Try the door", ("admin",)),
    "evaluation": ("Evaluation", ("admin", "audit")),
}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)


def signed_in(request: Request) -> KeyInfo | None:
    """The key behind the browser's console session, checked again (a revoked key is out)."""
    svc = service(request)
    secret = svc.console.key(request.cookies.get(COOKIE))
    return svc.store.authenticate(secret) if secret else None


def _page(request: Request, name: str, context: dict, status: int = 200) -> HTMLResponse:
    context = {"key": None, "page": "login", "title": "Sign in", "nav": [], **context}
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(HEADERS)
    return response


def _home(key: KeyInfo) -> str:
    return "/console/persons" if key.scope == "admin" else "/console/log"


@router.get("/")
def home(request: Request) -> Response:
    key = signed_in(request)
    return RedirectResponse(_home(key) if key else "/login", status_code=303)


@router.get("/login")
def login_page(request: Request) -> Response:
    return _page(request, "login.html", {"error": None})


@router.post("/login")
def login(request: Request, key: Annotated[str, Form(max_length=200)] = "") -> Response:
    svc = service(request)
    client = request.client.host if request.client else "?"
    if svc.sign_in_limiter.take(client):
        return _page(request, "login.html", {"error": "too many attempts; wait a minute"}, 429)
    info = svc.store.authenticate(key.strip()) if key.strip() else None
    if info is None:
        return _page(request, "login.html", {"error": "unknown or revoked key"}, 401)
    if info.scope not in SIGN_IN_SCOPES:
        error = f"a {info.scope} key cannot sign in to the console; use an admin or audit key"
        return _page(request, "login.html", {"error": error}, 403)
    response = RedirectResponse(_home(info), status_code=303)
    response.set_cookie(
        COOKIE,
        svc.console.open(key.strip()),
        max_age=int(svc.console.ttl_s),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    service(request).console.close(request.cookies.get(COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/console/{page}")
def console_page(request: Request, page: str) -> Response:
    key = signed_in(request)
    if key is None:
        return RedirectResponse("/login", status_code=303)
    if page not in PAGES:
        return _page(request, "missing.html", _context(key, page), 404)
    if key.scope not in PAGES[page][1]:
        return _page(request, "missing.html", _context(key, page), 403)
    return _page(request, f"{page}.html", _context(key, page))


def _context(key: KeyInfo, page: str) -> dict:
    nav = [(name, title) for name, (title, scopes) in PAGES.items() if key.scope in scopes]
    title = PAGES.get(page, ("Not here",))[0]
    return {"key": key, "page": page, "title": title, "nav": nav}
