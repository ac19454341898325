"""One message to one target through apprise, with apprise's own per-target result."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

import apprise

from .recipients import CONFIG_PREFIX, MissingSecret, redact, resolve_secrets
from .routing import load_apprise_config


@dataclass(frozen=True, slots=True)
class Delivery:
    ok: bool
    shown_target: str  # apprise's privacy form: safe to store
    detail: str  # JSON: apprise's result per service (status, elapsed, its log lines)


class AppriseNotifier:
    def __init__(self, apprise_config: str | None = None):
        self._config = {str(s.url_id()): s for s in load_apprise_config(apprise_config)}

    def plugin(self, target: str):
        if target.startswith(CONFIG_PREFIX):
            return self._config.get(target[len(CONFIG_PREFIX):])
        return apprise.Apprise.instantiate(resolve_secrets(target))

    def send(self, target: str, title: str, body: str) -> Delivery:
        d = self._send(target, title, body)
        return Delivery(d.ok, redact(d.shown_target, target), redact(d.detail, target))

    def _send(self, target: str, title: str, body: str) -> Delivery:
        try:
            plugin = self.plugin(target)
        except MissingSecret as e:
            return Delivery(False, target, json.dumps({"error": str(e)}))
        if plugin is None:
            return Delivery(False, target, json.dumps({"error": "apprise cannot use this target"}))
        shown = plugin.url(privacy=True)
        a = apprise.Apprise()
        a.add(plugin)
        try:
            result = a.notify(body=body, title=title)
        except Exception as e:  # noqa: BLE001  -- a plugin bug costs one attempt, never the worker
            return Delivery(False, shown, json.dumps({"error": f"{type(e).__name__}: {e}"[:500]}))
        per_target = getattr(result, "results", None)
        if per_target is None:  # apprise 1.x answers with a bool
            return Delivery(bool(result), shown, json.dumps({"ok": bool(result)}))
        detail = [{"service": r.name, "url": r.url, "status": r.status.name if hasattr(r.status, "name") else r.status,
                   "attempts": [{"status": at.status.name, "elapsed": round(at.elapsed, 4),
                                 "log": [str(x)[:300] for x in (at.logs or [])][:5]} for at in r.attempts]}
                  for r in per_target]
        return Delivery(bool(result), shown, json.dumps(detail, ensure_ascii=False, default=str))


class HttpPoster:
    """A document POSTed to a system's endpoint (CAP to a warning platform); any 2xx is delivered."""

    def __init__(self, timeout_s: float = 15.0):
        self.timeout_s = timeout_s

    def send(self, target: str, payload: bytes, content_type: str) -> Delivery:
        try:
            url = resolve_secrets(target)
        except MissingSecret as e:
            return Delivery(False, target, json.dumps({"error": str(e)}))
        req = urllib.request.Request(url, data=payload, method="POST",
                                     headers={"Content-Type": f"{content_type}; charset=utf-8"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                return Delivery(True, target, json.dumps({"status": r.status}))
        except urllib.error.HTTPError as e:
            return Delivery(False, target, json.dumps({"status": e.code, "error": str(e.reason)[:300]}))
        except (urllib.error.URLError, OSError, ValueError) as e:
            return Delivery(False, target, json.dumps({"error": f"{type(e).__name__}: {e}"[:500]}))
