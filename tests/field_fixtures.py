"""A real service for the field-report and weather tests: Mosquitto, HTTP on a free port, apprise
to a local receiver (tests/alert_fixtures.py's two-site network), monitors with tokens."""
from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from geowarn.daemon.config import load_config
from geowarn.daemon.rules import deep_merge, default_rules_dir
from geowarn.daemon.service import Service
from geowarn.simulators.http_receiver import HttpReceiver

from alert_fixtures import write_config
from helpers import wait_subscribed

API_TOKEN = "field-api-token"
MONITOR_TOKEN = "wang-secret"


class FieldChain:
    def __init__(self, tmp_path: Path, broker_url: str, monkeypatch, declared_markers=("S2-M-A",),
                 s2_county: str | None = None, rules: dict | None = None, videos: dict | None = None,
                 **sections):
        monkeypatch.setenv("GEOWARN_HTTP_TOKEN", API_TOKEN)
        monkeypatch.setenv("GEOWARN_FIELD_WANG", MONITOR_TOKEN)
        self.rx = HttpReceiver().start()
        http = {"port": 0, **sections.pop("http", {})}
        path = write_config(tmp_path / "geowarn.yaml", self.rx.port, broker_url, http=http,
                            field={"monitors": {"王监测": "GEOWARN_FIELD_WANG"}, "photo_max_bytes": 1000}, **sections)
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        s2 = next(s for s in doc["sites"] if s["id"] == "S2")
        s2["devices"] += [{"id": m, "kind": "marker"} for m in declared_markers]
        for site in doc["sites"]:  # video units with their snapshot URL
            if site["id"] in (videos or {}):
                site["devices"].append({"id": f"{site['id']}-VIDEO", "kind": "video",
                                        "snapshot_url": videos[site["id"]]})
        if s2_county:  # another county, elsewhere: outside a county's warning
            s2.update(county=s2_county, lon=112.5, lat=27.9)
        if rules:  # the packaged rules with some values changed, e.g. short weather reminders
            rdir = tmp_path / "rules"
            shutil.copytree(default_rules_dir(), rdir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
            rdoc = yaml.safe_load((rdir / "defaults.yaml").read_text(encoding="utf-8"))
            (rdir / "defaults.yaml").write_text(yaml.safe_dump(deep_merge(rdoc, rules), allow_unicode=True),
                                                encoding="utf-8")
            doc["rules"] = "rules"
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        self.cfg = load_config(path)
        self.path, self.state, self.broker_url = path, tmp_path / "state", broker_url
        self.svc = Service(self.cfg, self.state, broker_url, config_path=str(path))
        self.svc.start()
        wait_subscribed(tmp_path / "state", self.cfg.registry, broker_url, time.time() - 30 * 86400, "S2-CRACK")

    def http(self, method: str, path: str, body=None, token: str | None = API_TOKEN) -> tuple[int, object]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = (body if isinstance(body, bytes) else json.dumps(body).encode()) if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.svc.http.port}{path}", method=method, data=data,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw, status = r.read().decode(), r.status
        except urllib.error.HTTPError as e:
            raw, status = e.read().decode(), e.code
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw

    def report(self, body: dict, token: str | None = MONITOR_TOKEN) -> tuple[int, dict]:
        return self.http("POST", "/api/v1/field-reports", body, token)  # type: ignore[return-value]

    def restart(self) -> None:
        self.svc.stop()
        self.svc = Service(self.cfg, self.state, self.broker_url, config_path=str(self.path))
        self.svc.start()

    def stop(self) -> None:
        self.svc.stop()
        self.rx.stop()
