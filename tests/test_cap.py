"""Site warnings as CAP 1.2: every message valid against the official OASIS schema; the grade
table, drills as Exercise, the Alert → Update → Cancel chain with its references; renewal before
expiry; XML-DSig; the feed and message endpoints under the API's read rules; push through the
outbox to a local endpoint, retried and de-duplicated."""
from __future__ import annotations

import datetime as dt
import time
from importlib import resources

import pytest
import yaml
from lxml import etree

from geowarn.daemon.alerts.events import SiteLevelChange
from geowarn.daemon.alerts.manager import AlertManager
from geowarn.daemon.alerts.messages import Renderer
from geowarn.daemon.cap import store
from geowarn.daemon.cap.publisher import CapPublisher
from geowarn.daemon.config import load_config

from alert_fixtures import write_config
from helpers import wait_until

NS = {"c": "urn:oasis:names:tc:emergency:cap:1.2", "a": "http://www.w3.org/2005/Atom"}
XSD = etree.XMLSchema(etree.parse(str(resources.files("geowarn.daemon.cap") / "schema" / "CAP-v1.2.xsd")))
T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC
# what the documented table says (docs/cap.md), written out: a change of the table must be meant
TABLE = {"blue": ("Future", "Moderate", "Possible", "Monitor"),
         "yellow": ("Future", "Severe", "Possible", "Prepare"),
         "orange": ("Expected", "Severe", "Likely", "Evacuate"),
         "red": ("Immediate", "Extreme", "Likely", "Evacuate")}


def valid(xml: bytes) -> etree._Element:
    doc = etree.fromstring(xml)
    XSD.assertValid(doc)
    return doc


def grade_of(doc: etree._Element) -> tuple[str, ...]:
    info = doc.find("c:info", NS)
    return tuple(info.findtext(f"c:{k}", namespaces=NS) for k in ("urgency", "severity", "certainty", "responseType"))


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


class Lifecycle:
    """The real manager and CAP publisher on a real journal; no delivery worker needed."""

    def __init__(self, tmp_path, **cap):
        doc_path = write_config(tmp_path / "geowarn.yaml", 9, cap={"sender": "xtdz@example.cn", "radius_km": 0.8,
                                                                     "site_radius_km": {"S2": 2.5}, **cap})
        doc = yaml.safe_load(doc_path.read_text(encoding="utf-8"))
        doc["sites"][0]["division_code"] = "430321"
        doc_path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        self.cfg = load_config(doc_path)
        s = self.cfg.settings
        self.clock = Clock(T0)
        self.renderer = Renderer(s.notify.templates_dir, s.notify.timezone)
        db = tmp_path / "state" / "journal.sqlite"
        self.cap = CapPublisher(s.cap, self.renderer, db)
        self.mgr = AlertManager(self.cfg.registry, db, notify=s.notify, renderer=self.renderer, wake=lambda: None,
                                clock=self.clock, cap=self.cap)

    def level(self, site: str, level: str, previous: str, drill: bool = False, forecast: float | None = None,
              reasons=("裂缝计 S1-CRACK 速率 21.5 mm/d",)) -> int:
        self.clock.t += 600
        return self.mgr.handle(SiteLevelChange(site, self.clock.t, level, previous, list(reasons),
                                               forecast_failure_ts=forecast, drill=drill))

    def messages(self, alert_id: int) -> list[store.CapRow]:
        with self.cap.db.read() as db:
            return store.of_alert(db, alert_id)

    def close(self) -> None:
        self.mgr.close()
        self.cap.close()


@pytest.fixture
def life(tmp_path):
    lc = Lifecycle(tmp_path)
    yield lc
    lc.close()


@pytest.mark.parametrize("drill", [False, True])
def test_every_message_of_a_warning_is_valid_cap_with_its_chain_grade_and_status(life, drill):
    aid = life.level("S1", "blue", "normal", drill)
    for prev, new in (("blue", "yellow"), ("yellow", "orange"), ("orange", "red"), ("red", "orange")):
        assert life.level("S1", new, prev, drill) == aid
    life.level("S1", "normal", "orange", drill)  # the all-clear
    rows = life.messages(aid)
    docs = [valid(r.xml) for r in rows]
    assert [r.event for r in rows] == ["opened", "raised", "raised", "raised", "lowered", "closed"]
    assert [d.findtext("c:msgType", namespaces=NS) for d in docs] == ["Alert"] + ["Update"] * 4 + ["Cancel"]
    # a drill is Exercise in every message, a real warning Actual: never the other way round
    assert {d.findtext("c:status", namespaces=NS) for d in docs} == {"Exercise" if drill else "Actual"}
    assert all(d.findtext("c:scope", namespaces=NS) == "Public" for d in docs)
    assert all((d.find("c:note", NS) is not None) == drill for d in docs)
    # identifiers: one per alert and version, stable (stored once, read back byte for byte)
    idents = [d.findtext("c:identifier", namespaces=NS) for d in docs]
    assert len(set(idents)) == 6 and all(i.endswith(f".A{aid}.{n}") for n, i in enumerate(idents, 1))
    assert all(life.cap.message(r.identifier).xml == r.xml for r in rows)
    # each update and the cancel reference every earlier message of the alert as sender,identifier,sent
    for n, d in enumerate(docs):
        refs = (d.findtext("c:references", namespaces=NS) or "").split()
        assert refs == [f"xtdz@example.cn,{idents[k]},{docs[k].findtext('c:sent', namespaces=NS)}" for k in range(n)]
    # the grade follows the level (the documented table), the cancel says all clear
    assert [grade_of(d) for d in docs[:5]] == [TABLE[lv] for lv in ("blue", "yellow", "orange", "red", "orange")]
    assert grade_of(docs[5]) == ("Past", "Minor", "Observed", "AllClear")
    # Beijing time with its offset, to the second; valid for a day
    sent = dt.datetime.fromisoformat(docs[0].findtext("c:sent", namespaces=NS))
    assert sent.utcoffset() == dt.timedelta(hours=8) and sent.timestamp() == T0 + 600
    expires = dt.datetime.fromisoformat(docs[0].findtext("c:info/c:expires", namespaces=NS))
    assert expires.timestamp() - sent.timestamp() == 24 * 3600


def test_info_blocks_speak_chinese_and_english_about_the_place(life):
    aid = life.level("S1", "red", "normal")
    doc = valid(life.messages(aid)[0].xml)
    zh, en = doc.findall("c:info", NS)
    assert [zh.findtext("c:language", namespaces=NS), en.findtext("c:language", namespaces=NS)] == ["zh-CN", "en"]
    for info in (zh, en):
        assert info.findtext("c:category", namespaces=NS) == "Geo"
        assert info.findtext("c:area/c:circle", namespaces=NS) == "27.60000,112.80000 0.8"
        assert info.findtext("c:area/c:geocode/c:value", namespaces=NS) == "430321"
        assert info.findtext("c:area/c:geocode/c:valueName", namespaces=NS) == "GB/T 2260"
    assert zh.findtext("c:event", namespaces=NS) == "滑坡" and en.findtext("c:event", namespaces=NS) == "landslide"
    assert zh.findtext("c:headline", namespaces=NS) == "测试1号滑坡红色预警（警报级）"
    assert zh.findtext("c:area/c:areaDesc", namespaces=NS) == "湘潭县测试镇1测试1号滑坡"
    assert "21.5 mm/d" in zh.findtext("c:description", namespaces=NS)
    assert zh.findtext("c:instruction", namespaces=NS).startswith("立即撤离")  # the household's what-to-do
    assert en.findtext("c:instruction", namespaces=NS).startswith("LEAVE NOW")
    # a site without a division code has its area by name and circle only; its own radius
    other = valid(life.messages(life.level("S2", "orange", "normal"))[0].xml)
    assert other.find("c:info/c:area/c:geocode", NS) is None
    assert other.findtext("c:info/c:area/c:circle", namespaces=NS).endswith(" 2.5")


@pytest.mark.parametrize("level, hours, expected", [
    ("yellow", 48.0, ("Expected", "Severe", "Likely", "Prepare")),    # failure within 3 days: soon, likely
    ("orange", 10.0, ("Immediate", "Severe", "Likely", "Evacuate")),  # within a day: now
    ("red", 100.0, ("Immediate", "Extreme", "Likely", "Evacuate")),   # far forecast: the level decides
    ("blue", 200.0, ("Future", "Moderate", "Possible", "Monitor")),
])
def test_a_near_failure_forecast_raises_urgency_and_certainty(life, level, hours, expected):
    forecast = T0 + 600 + hours * 3600
    doc = valid(life.messages(life.level("S1", level, "normal", forecast=forecast))[0].xml)
    assert grade_of(doc) == expected
    onset = dt.datetime.fromisoformat(doc.findtext("c:info/c:onset", namespaces=NS))
    assert onset.timestamp() == int(forecast)


def test_a_stand_down_cancels_with_its_reason_and_a_long_warning_is_renewed_before_it_expires(life):
    aid = life.level("S1", "orange", "normal")
    life.clock.t += 22 * 3600
    life.mgr.tick(life.clock.t)
    assert [r.event for r in life.messages(aid)] == ["opened"]  # 2 h left: not yet
    life.clock.t += 1.5 * 3600
    life.mgr.tick(life.clock.t)
    life.mgr.tick(life.clock.t + 1)
    rows = life.messages(aid)
    assert [r.event for r in rows] == ["opened", "renewed"] and rows[1].expires == life.clock.t + 24 * 3600
    doc = valid(rows[1].xml)
    assert doc.findtext("c:msgType", namespaces=NS) == "Update" and grade_of(doc) == TABLE["orange"]
    life.mgr.stand_down(aid, "值班员", "现场核查为误报")
    cancel = valid(life.messages(aid)[-1].xml)
    assert cancel.findtext("c:msgType", namespaces=NS) == "Cancel"
    assert "现场核查为误报" in cancel.findtext("c:info/c:description", namespaces=NS)
    assert "撤销" in cancel.findtext("c:info/c:description", namespaces=NS)
    life.mgr.tick(life.clock.t + 30 * 3600)
    assert len(life.messages(aid)) == 3  # nothing renews a cancelled warning


def test_signed_messages_verify_and_stay_valid(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    from signxml import XMLVerifier
    from signxml.exceptions import InvalidSignature

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "geowarn test centre")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    lc = Lifecycle(tmp_path, sign={"key_file": str(tmp_path / "key.pem"), "cert_file": str(tmp_path / "cert.pem")})
    try:
        aid = lc.level("S1", "red", "normal")
        lc.level("S1", "normal", "red")
        for row in lc.messages(aid):
            doc = valid(row.xml)  # the signature sits where CAP 1.2 allows it: the alert's last element
            assert etree.QName(doc[-1]).localname == "Signature"
            XMLVerifier().verify(row.xml, x509_cert=cert_pem)
            tampered = row.xml.replace("测试1号滑坡".encode(), "别处滑坡".encode())
            with pytest.raises(InvalidSignature):
                XMLVerifier().verify(tampered, x509_cert=cert_pem)
    finally:
        lc.close()


def test_feed_and_message_endpoints_follow_the_read_rules_and_push_goes_through_the_outbox(tmp_path, mosquitto,
                                                                                              monkeypatch):
    from geowarn.daemon.service import Service
    from geowarn.simulators.http_receiver import HttpReceiver

    from console_fixtures import TOKEN, http

    monkeypatch.setenv("GEOWARN_HTTP_TOKEN", TOKEN)
    rx = HttpReceiver().start()
    platform = HttpReceiver().start()  # the province's release platform
    platform.fail = True  # down at first: the message waits in the outbox and is retried
    cfg_path = write_config(tmp_path / "geowarn.yaml", rx.port, mosquitto.url, http={"port": 0},
                            cap={"push": [f"http://127.0.0.1:{platform.port}/cap?k=${{GW_CAP_KEY}}"]})
    monkeypatch.setenv("GW_CAP_KEY", "secret-key")
    svc = Service(load_config(cfg_path), tmp_path / "state", mosquitto.url, drill=True)
    svc.start()
    try:
        aid = svc.alerts.handle(SiteLevelChange("S1", time.time(), "red", "normal", ["裂缝计 速率 48 mm/d"], drill=True))
        status, body = http(svc, "GET", "/api/v1/cap", token=None)
        assert status == 401
        status, body = http(svc, "GET", "/api/v1/cap")
        assert status == 200
        feed = etree.fromstring(body.encode())
        entries = feed.findall("a:entry", NS)
        assert len(entries) == 1
        embedded = entries[0].find("a:content/c:alert", NS)
        XSD.assertValid(etree.fromstring(etree.tostring(embedded)))
        assert embedded.findtext("c:status", namespaces=NS) == "Exercise"  # the drill's feed: Exercise
        href = entries[0].find("a:link[@rel='alternate']", NS).get("href")
        assert href.startswith(f"http://127.0.0.1:{svc.http.port}/api/v1/cap/") and href.endswith(f".A{aid}.1.xml")
        status, xml = http(svc, "GET", href.split(str(svc.http.port), 1)[1])
        assert status == 200 and valid(xml.encode()).findtext("c:msgType", namespaces=NS) == "Alert"
        assert http(svc, "GET", "/api/v1/cap?status=Actual")[1].count("<entry") == 0
        assert http(svc, "GET", "/api/v1/cap/no.such.message.xml")[0] == 404
        # the platform comes back: the retried push arrives once, as application/cap+xml
        assert wait_until(lambda: platform.failures >= 2, 20)
        platform.fail = False
        assert wait_until(lambda: len(platform.received) == 1, 30)
        got = platform.received[0]
        assert got.path == "/cap?k=secret-key" and got.content_type.startswith("application/cap+xml")
        assert valid(got.doc["raw"].encode()).findtext("c:identifier", namespaces=NS).endswith(f".A{aid}.1")
        rows = svc.alerts.manager.db.query("SELECT status, attempts, recipient, target FROM outbox WHERE channel = 'http'")
        assert len(rows) == 1 and rows[0]["status"] == "delivered" and rows[0]["attempts"] >= 3
        assert "secret-key" not in repr(tuple(rows[0]))  # the stored target keeps ${ENV}, never the secret
        svc.alerts.manager.stand_down(aid, "值班员", "演练结束")
        assert wait_until(lambda: len(platform.received) == 2, 30)
        assert valid(platform.received[1].doc["raw"].encode()).findtext("c:msgType", namespaces=NS) == "Cancel"
    finally:
        svc.stop()
        rx.stop()
        platform.stop()
