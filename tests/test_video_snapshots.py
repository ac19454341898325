"""Video units: an alert at a site with a camera carries a still fetched from a local snapshot
server over HTTP; a dead camera is a device fault and the warning still goes out at once."""
import http.server
import socket
import threading
import time

import pytest

from alert_fixtures import role_of
from field_fixtures import FieldChain
from helpers import wait_until

JPEG = b"\xff\xd8\xff\xe0 a still of the slope \xff\xd9"


class _Camera(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(JPEG)))
        self.end_headers()
        self.wfile.write(JPEG)

    def log_message(self, *a):
        pass


def _hung_camera() -> socket.socket:
    """Listens and never answers: a request to it hangs until the client gives up."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s


@pytest.fixture
def chain(tmp_path, mosquitto, monkeypatch):
    cam = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Camera)
    threading.Thread(target=cam.serve_forever, daemon=True).start()
    videos = {"S1": f"http://127.0.0.1:{cam.server_address[1]}/snapshot.jpg",
              "S2": f"http://127.0.0.1:{(hung := _hung_camera()).getsockname()[1]}/snapshot.jpg"}
    c = FieldChain(tmp_path, mosquitto.url, monkeypatch, videos=videos,
                   video={"public_url": "http://geowarn.example:8787", "timeout_s": 2})
    yield c
    c.stop()
    cam.shutdown()
    cam.server_close()
    hung.close()


def test_an_alert_at_a_video_site_carries_the_still(chain):
    st, a = chain.report({"site": "S1", "observations": ["new_crack"]})
    assert st == 201 and a["site_level"] == "yellow"
    alert = wait_until(lambda: next(iter(chain.http("GET", "/api/v1/alerts")[1]), None), 10)
    assert wait_until(lambda: chain.svc.video.latest(alert["id"]) is not None, 10)
    assert chain.svc.video.latest(alert["id"]).read_bytes() == JPEG
    import urllib.request
    req = urllib.request.Request(f"http://127.0.0.1:{chain.svc.http.port}/api/v1/alerts/{alert['id']}/snapshot",
                                 headers={"Authorization": "Bearer field-api-token"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.read() == JPEG and r.headers["Content-Type"] == "image/jpeg"
    link = f"http://geowarn.example:8787/api/v1/alerts/{alert['id']}/snapshot"
    assert wait_until(lambda: any(r.path.startswith("/S1/monitor/") and link in r.message
                                  for r in chain.rx.received), 10)
    st, detail = chain.http("GET", f"/api/v1/alerts/{alert['id']}")
    assert any(h["event"] == "snapshot" for h in detail["history"])


def test_a_dead_camera_is_a_fault_and_the_warning_is_not_delayed(chain):
    t0 = time.time()
    st, a = chain.report({"site": "S2", "observations": ["falling_rocks"]})
    assert st == 201 and a["site_level"] == "yellow"
    assert wait_until(lambda: any(r.path.startswith("/S2/monitor/") for r in chain.rx.received), 10)
    assert time.time() - t0 < 2.0, "the warning waited for the camera"
    assert wait_until(lambda: any(role_of(r.path) == "technician" and "S2-VIDEO" in r.message
                                  for r in chain.rx.received), 15)
    assert not any(role_of(r.path) == "household" and "S2-VIDEO" in r.message for r in chain.rx.received)
