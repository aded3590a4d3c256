"""Console sign-in sessions. A browser signs in with an admin or audit key once; the server keeps
the key in memory under a random session token and the browser holds only the token, in a cookie
that is HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it) and Secure
over HTTPS. The key itself is never in a cookie or a URL. Every request through a session checks
the key again, so a revoked key ends its sessions at once. Sessions live in this process (a
restart signs everyone out) and expire after FACEGATE_CONSOLE_SESSION_HOURS."""

import hashlib
import secrets
import threading
import time

COOKIE = "facegate_console"
# a console request that changes something must carry this header: a cross-site form cannot set
# it, and a cross-site script cannot send it without a CORS preflight this service never allows
CSRF_HEADER = "X-Facegate-Console"
SIGN_IN_SCOPES = ("admin", "audit")


class ConsoleSessions:
    def __init__(self, hours: float):
        self.ttl_s = hours * 3600
        self._sessions: dict[str, tuple[str, float]] = {}  # sha256(token) -> (key, expiry)
        self._lock = threading.Lock()

    def open(self, key: str) -> str:
        """A new session for `key` (already checked); the token for the cookie."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._drop_expired()
            self._sessions[_digest(token)] = (key, time.monotonic() + self.ttl_s)
        return token

    def key(self, token: str | None) -> str | None:
        """The key a live session holds, or None."""
        if not token:
            return None
        with self._lock:
            found = self._sessions.get(_digest(token))
            if found is None or found[1] < time.monotonic():
                self._sessions.pop(_digest(token), None)
                return None
            return found[0]

    def close(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(_digest(token), None)

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for digest in [d for d, (_, expiry) in self._sessions.items() if expiry < now]:
            del self._sessions[digest]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
