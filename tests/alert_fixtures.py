"""A small network for the alert tests: two sites, national and native devices, an alarm
each, contacts whose phones route to a local HTTP receiver through `notify.phone_url`."""
from __future__ import annotations

from pathlib import Path

import yaml

PHONES = {  # phone -> (site, role, name)
    "13900000001": ("S1", "monitor", "王监测"),
    "13900000002": ("S1", "official", "李镇长"),
    "13900000003": ("S1", "household", "张户主"),
    "13900000004": ("S1", "household", "赵户主"),
    "13900000005": ("S1", "technician", "钱运维"),
    "13900000006": ("S1", "duty_officer", "孙值班"),
    "13900000011": ("S2", "monitor", "Monitor Two"),
    "13900000013": ("S2", "household", "户主二"),
    "13900000015": ("S2", "technician", "运维二"),
}


def network(site_ids=("S1", "S2")) -> dict:
    sites = []
    for n, sid in enumerate(site_ids, 1):
        contacts: dict[str, list] = {}
        for phone, (s, role, name) in PHONES.items():
            if s == sid:
                contacts.setdefault(role, []).append(
                    {"name": name, "role": role, "phone": phone, **({"lang": "en"} if name.isascii() else {})})
        proto = "national" if n == 1 else "native"
        sites.append({
            "id": sid, "name": f"测试{n}号滑坡", "county": "湘潭县", "township": f"测试镇{n}",
            "hazard": "landslide", "lon": 112.8, "lat": 27.6, "households": 3, "people": 9,
            "contacts": contacts,
            "devices": [
                {"id": f"{sid}-GNSS", "kind": "gnss", "protocol": proto},
                {"id": f"{sid}-CRACK", "kind": "crack", "protocol": proto, "interval_s": 3600,
                 "accelerated_interval_s": 60},
                {"id": f"{sid}-ALARM", "kind": "alarm", "protocol": proto},
            ]})
    return {"name": "test network", "sites": sites}


def write_config(path: Path, receiver_port: int, broker_url: str | None = None, **sections) -> Path:
    doc = network()
    notify = {"phone_url": f"json://127.0.0.1:{receiver_port}/{{site}}/{{role}}/{{phone}}",
              "retry": {"base_s": 0.05, "max_s": 0.4, "report_failing_after": 3},
              "contacts": [
                  {"name": "测试镇1 镇长", "role": "township_head", "township": "测试镇1",
                   "url": f"json://127.0.0.1:{receiver_port}/S1/township_head/head1"},
                  {"name": "湘潭县值班室", "role": "county_duty_office", "county": "湘潭县",
                   "url": f"json://127.0.0.1:{receiver_port}/county/county_duty_office/office"}]}
    notify.update(sections.pop("notify", {}))
    doc["notify"] = notify
    if broker_url:
        doc["intake"] = {"broker": broker_url, "client_id": "geowarn-test"}
    doc.update(sections)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def role_of(path: str) -> str:
    """`/S1/household/139…` -> household"""
    return path.strip("/").split("/")[1]
