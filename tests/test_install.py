"""The product is what an operator installs: the wheel (built from the sdist, as `python -m build`
does) in a fresh virtualenv outside the checkout, run from a directory that is not the checkout.
Every other test runs against the editable install, which finds modules and data through the
source tree and so cannot see a file missing from the wheel."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tomllib
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from helpers import wait_until

REPO = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = ("daemon", "drivers", "alert_rules", "simulators")  # each is geowarn.<folder>
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
TOKEN = "install-test-token"
BUILD_LEFTOVERS = (".git", ".venv", "*.egg-info", "build", "dist", "__pycache__", "state", "test-artifacts",
                   ".hypothesis", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".import_linter_cache", "*.sqlite*")


def _source_files() -> set[str]:
    """Every file of the package folders as it lies in the installed package: geowarn/<folder>/…"""
    return {f"geowarn/{p.relative_to(REPO).as_posix()}" for top in PACKAGE_FOLDERS
            for p in (REPO / top).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")}


class Installed:
    """A virtualenv holding only the wheel and its dependencies; commands run with a scratch cwd
    and an environment that names no path of the checkout."""

    def __init__(self, venv: Path, cwd: Path):
        self.venv, self.cwd = venv, cwd
        self.bin = venv / "bin"
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        self.env.pop("GEOWARN_HTTP_TOKEN", None)
        self.env["PATH"] = f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}"

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin / "geowarn"), *args], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def python(self, code: str) -> str:
        return subprocess.run([str(self.bin / "python"), "-c", code], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, check=True, timeout=60).stdout.strip()


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    # from a copy without build leftovers: setuptools adds the files an old egg-info listed to
    # the sdist, which would hide a file that MANIFEST.in no longer takes
    src, out = tmp_path_factory.mktemp("src") / "geowarn", tmp_path_factory.mktemp("dist")
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(*BUILD_LEFTOVERS))
    r = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    wheels, sdists = list(out.glob("geowarn-*.whl")), list(out.glob("geowarn-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


@pytest.fixture(scope="module")
def installed(dists, tmp_path_factory) -> Installed:
    root = tmp_path_factory.mktemp("operator")
    venv, cwd = root / "venv", root / "cwd"
    cwd.mkdir()
    # the interpreter's own venv module: a venv created from our (editable) venv's python still
    # starts empty, on the base interpreter, without --system-site-packages
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # our pip installs into it (no ensurepip bootstrap); dependencies come from the index or its cache
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                        "--quiet", str(dists["wheel"])], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return Installed(venv, cwd)


def test_the_installed_package_is_the_wheel_not_the_checkout(installed):
    where = json.loads(installed.python(
        "import json, sys, geowarn.daemon, geowarn.drivers; "
        "print(json.dumps({'daemon': geowarn.daemon.__file__, 'drivers': geowarn.drivers.__file__, 'path': sys.path}))"))
    site = str(installed.venv)
    assert where["daemon"].startswith(site) and where["drivers"].startswith(site), where
    assert not [p for p in where["path"] if p and Path(p).resolve().is_relative_to(REPO)], where["path"]


def test_the_wheel_and_the_sdist_hold_every_file_of_the_package_folders(dists, installed):
    source = _source_files()
    assert len(source) > 150  # the folders were found at all
    with zipfile.ZipFile(dists["wheel"]) as whl:
        in_wheel = set(whl.namelist())
    assert sorted(source - in_wheel) == []
    with tarfile.open(dists["sdist"]) as sd:
        in_sdist = {"geowarn/" + m.split("/", 1)[1] for m in sd.getnames() if "/" in m}
    assert sorted(source - in_sdist) == []
    site = Path(installed.python("import geowarn.daemon, pathlib; print(pathlib.Path(geowarn.daemon.__file__).parents[2])"))
    on_disk = {p.relative_to(site).as_posix() for p in (site / "geowarn").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert sorted(source - on_disk) == []


def test_the_wheel_brings_only_the_dependencies_the_service_uses(installed):
    absent = installed.python("import importlib.util as u; "
                              "print([m for m in ('scipy', 'aiomqtt', 'amqtt', 'pytest') if u.find_spec(m)])")
    assert absent == "[]"
    # the demo's in-process broker is the `demo` extra: without it, one clear line, not a traceback
    said = installed.python("from geowarn.daemon.config import ConfigError\n"
                            "from geowarn.simulators.embedded_broker import EmbeddedBroker\n"
                            "try:\n    EmbeddedBroker().start()\nexcept ConfigError as e:\n    print(e)")
    assert "geowarn[demo]" in said


def test_version_check_and_devices_from_the_installed_package(installed):
    r = installed.run("--version")
    assert (r.returncode, r.stdout.strip()) == (0, f"geowarn {VERSION}"), r.stderr
    r = installed.run("check")
    assert r.returncode == 0, r.stderr
    assert f"{installed.venv}" in r.stdout and ": OK" in r.stdout and "296 devices" in r.stdout
    r = installed.run("devices", "--json")
    assert r.returncode == 0, r.stderr
    devices = json.loads(r.stdout)
    assert len(devices) == 296 and len({d["id"] for d in devices}) == 296


def test_a_drill_on_mosquitto_from_the_installed_package(installed, mosquitto, tmp_path):
    report = tmp_path / "drill.json"
    # 30 simulated hours in about 15 s: a crack meter goes silent, the technician is told
    r = installed.run("drill", "device-offline", "--broker", mosquitto.url, "--speed", "7200",
                      "--report", str(report), "--html", str(tmp_path / "drill.html"), timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "PASS" in r.stdout
    doc = json.loads(report.read_text(encoding="utf-8"))
    assert doc["passed"] is True and doc["checks"], doc
    assert "<html" in (tmp_path / "drill.html").read_text(encoding="utf-8").lower()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_the_installed_service_runs_and_serves_health_console_and_network(installed, mosquitto, tmp_path):
    registry = installed.python("from geowarn.daemon.config import default_config_path; print(default_config_path())")
    assert registry.startswith(str(installed.venv))
    port = _free_port()
    cfg = tmp_path / "geowarn.yaml"
    cfg.write_text(f"registry: {registry}\nintake: {{client_id: gw-installed}}\n"
                   f"http: {{host: 127.0.0.1, port: {port}}}\n", encoding="utf-8")
    creds = tmp_path / "credentials"  # as geowarn.service hands it over: LoadCredential=http-token:…
    creds.mkdir()
    (creds / "http-token").write_text(TOKEN, encoding="utf-8")
    proc = subprocess.Popen([str(installed.bin / "geowarn"), "run", "--config", str(cfg), "--broker", mosquitto.url,
                             "--state-dir", str(tmp_path / "state")], cwd=installed.cwd,
                            env={**installed.env, "CREDENTIALS_DIRECTORY": str(creds)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def health():
            try:
                return _get(f"{base}/healthz")
            except OSError:
                return None
        assert wait_until(lambda: proc.poll() is not None or health() is not None, timeout=60)
        assert proc.poll() is None, proc.communicate()
        status, body = health()
        assert status in (200, 503) and json.loads(body)["status"] in ("ok", "degraded", "failing")
        status, page = _get(f"{base}/console/")
        assert status == 200 and b"<html" in page.lower()
        status, js = _get(f"{base}/console/static/vendor/uplot/uPlot.iife.min.js")
        assert status == 200 and len(js) > 10_000
        status, body = _get(f"{base}/api/v1/network", TOKEN)
        assert status == 200, body
        assert len(json.loads(body)["sites"]) == 80
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-3000:]


def test_systemd_units_verify_against_the_installed_path(installed, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: `make test` installs systemd")
    units = []
    for unit in sorted((REPO / "systemd").glob("*.service")):
        text = unit.read_text(encoding="utf-8")
        assert "/opt/geowarn/.venv/bin/geowarn " in text, unit.name  # README installs the venv there
        (tmp_path / unit.name).write_text(text.replace("/opt/geowarn/.venv", str(installed.venv)), encoding="utf-8")
        units.append(str(tmp_path / unit.name))
    assert len(units) >= 3
    r = subprocess.run([analyze, "verify", *units], capture_output=True, text=True)
    assert (r.returncode, r.stderr.strip()) == (0, ""), r.stderr
    r = subprocess.run([analyze, "security", "--offline=yes", str(tmp_path / "geowarn.service")],
                       capture_output=True, text=True)
    exposure = float(r.stdout.strip().splitlines()[-1].split("geowarn.service:")[1].split()[0])
    assert exposure <= 2.5, r.stdout[-500:]
