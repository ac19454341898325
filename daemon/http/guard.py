"""Who may pass, and what a refusal costs: next to nothing. Tokens come in
`Authorization: Bearer <token>` (the scheme in any case, RFC 7235) and are compared in
constant time as bytes. A request without a valid token is answered at once and logged as a
bounded record (who, route, reason; never its body), and each source address may be refused
only so often: past its budget it gets 429 without a log line of its own (one summary a
minute). Bodies over the limit are counted and logged. The middleware turns every error into
a JSON answer: nothing a client sends makes a 500 (one would be a bug, logged and counted)."""
from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Mapping

from aiohttp import web

from ..secrets import secret
from .body import BodyRefused, error
from .settings import HttpSettings

log = logging.getLogger("geowarn.http.guard")

REFUSALS_BURST = 20  # refusals an address may cause at once …
REFUSALS_PER_S = 0.2  # … and then one every 5 s
ADDRESSES_TRACKED = 10_000  # least recently refused addresses are forgotten beyond this
SUMMARY_EVERY_S = 60.0


def bearer(request: web.Request) -> bytes | None:
    """The token of an `Authorization: Bearer …` header, as the bytes sent; None without one."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:  # aiohttp decodes header bytes as UTF-8 with surrogateescape: this gives back the bytes sent
        return token.strip().encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # no token of ours
        return token.strip().encode("utf-8", "replace")


def same_token(given: bytes, expected: str | None) -> bool:
    return bool(expected) and hmac.compare_digest(given, expected.encode())  # type: ignore[union-attr]


class Gate:
    def __init__(self, settings: HttpSettings, environ: Mapping[str, str]):
        self.settings = settings
        self.environ = environ
        self.counts: Counter[str] = Counter()  # refused / throttled / oversize / errors, for /metrics
        self._budgets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, at)
        self._throttled_since_summary: Counter[str] = Counter()
        self._last_summary = time.monotonic()
        self._lock = threading.Lock()

    # --- tokens ------------------------------------------------------------------------------

    def token(self) -> str | None:
        return secret(self.settings.token_env, self.settings.token_credential, self.environ)

    def denied(self, request: web.Request, write: bool, *, extra_env: str | None = None) -> web.Response | None:
        """None if the request may pass; else the answer (recorded). Reads pass without a token
        when `http.open_reads`; `extra_env` names another token this route also takes (/metrics)."""
        if not write and self.settings.open_reads:
            return None
        token = self.token()
        if not token:
            return error(503, f"no API token configured: set {self.settings.token_env} "
                              f"or the credential {self.settings.token_credential}")
        given = bearer(request)
        if given is None:
            return self.refuse(request, 401, "missing `Authorization: Bearer <token>`")
        if same_token(given, token) or (extra_env is not None and same_token(given, secret(extra_env, None,
                                                                                            self.environ))):
            return None
        return self.refuse(request, 403, "wrong token")

    # --- refusals ----------------------------------------------------------------------------

    def refuse(self, request: web.Request, status: int, reason: str) -> web.Response:
        """Answer a request that has no right here: a bounded log line, within the address's
        budget; 429 past it."""
        if not self.spend(request):
            return error(429, "too many refused requests from this address; try again later")
        self.counts["refused"] += 1
        log.warning("refused %s %s from %s: %d %s", request.method, request.path[:100], _who(request), status,
                    reason[:200])
        return error(status, reason)

    def spend(self, request: web.Request) -> bool:
        """Take one refusal from the address's budget; False (and counted) when it is spent."""
        who, now = _who(request), time.monotonic()
        with self._lock:
            tokens, at = self._budgets.pop(who, (float(REFUSALS_BURST), now))
            tokens = min(float(REFUSALS_BURST), tokens + (now - at) * REFUSALS_PER_S)
            ok = tokens >= 1.0
            self._budgets[who] = (tokens - 1.0 if ok else tokens, now)
            while len(self._budgets) > ADDRESSES_TRACKED:
                self._budgets.popitem(last=False)
            if not ok:
                self.counts["throttled"] += 1
                self._throttled_since_summary[who] += 1
            summary = None
            if self._throttled_since_summary and now - self._last_summary >= SUMMARY_EVERY_S:
                summary, self._throttled_since_summary = self._throttled_since_summary, Counter()
                self._last_summary = now
        if summary:
            log.warning("throttled refused requests in the last minute: %s",
                        ", ".join(f"{a} ×{n}" for a, n in summary.most_common(10)))
        return ok

    def oversize(self, request: web.Request, reason: str) -> None:
        self.counts["oversize"] += 1
        log.warning("oversize body refused: %s %s from %s: %s", request.method, request.path[:100], _who(request),
                    reason)


GATE = web.AppKey("gate", Gate)


def _who(request: web.Request) -> str:
    return request.remote or "?"


@web.middleware
async def answer_in_json(request: web.Request, handler) -> web.StreamResponse:
    """Every answer JSON, every failure a 4xx with the reason (a 500 is a bug: logged, counted)."""
    gate = request.app[GATE]
    try:
        return await handler(request)
    except BodyRefused as e:
        if e.status == 413:
            gate.oversize(request, e.reason)
        return error(e.status, e.reason)
    except web.HTTPRequestEntityTooLarge as e:
        gate.oversize(request, e.text or "body too large")
        return error(413, "body too large")
    except web.HTTPException as e:
        if e.status < 400 or e.content_type == "application/json":
            raise
        return error(e.status, e.reason)
    except Exception:
        gate.counts["errors"] += 1
        log.exception("%s %s failed", request.method, request.path[:100])
        return error(500, "internal error: logged for the operators")
