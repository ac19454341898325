"""The OpenAPI description (daemon/http/openapi.yaml, GET /api/v1/openapi.json) is in step with
the routes, and schemathesis finds no 5xx and no answer outside it on the live service: every
operation, positive and negative cases, a fixed seed (CI-sized: CASES per operation)."""
from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from geowarn.daemon.http import openapi
from geowarn.simulators.local_broker import Mosquitto

from field_fixtures import API_TOKEN, MONITOR_TOKEN, FieldChain

CASES = 300  # per operation, positive and negative: about half a minute in all
STREAMS = {"/api/v1/events"}  # endless by design: its refusals are tested in test_console_api.py
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """One service for all cases, with an alert, a field report and a weather warning in it."""
    tmp = tmp_path_factory.mktemp("openapi")
    (tmp / "mosquitto").mkdir()
    broker = Mosquitto(workdir=tmp / "mosquitto").start()
    with pytest.MonkeyPatch.context() as mp:
        chain = FieldChain(tmp, broker.url, mp)
        try:
            now = time.time()
            assert chain.report({"site": "S1", "observations": ["new_crack"]})[0] == 201  # opens an alert
            assert chain.http("POST", "/api/v1/weather-warnings", {"id": "W1", "level": "blue", "counties": ["湘潭县"],
                                                                   "valid_from": now, "valid_to": now + 3600})[0] == 201
            yield chain
        finally:
            chain.stop()
            broker.close()


@pytest.fixture(scope="module")
def api(live):
    schema = schemathesis.openapi.from_dict(openapi.document())
    schema.config.update(base_url=f"http://127.0.0.1:{live.svc.http.port}")
    return schema


def test_every_route_is_described_and_nothing_else(live):
    doc = live.http("GET", openapi.PATH, token=None)[1]
    assert doc == openapi.document() and doc["openapi"].startswith("3.1")
    served = set()
    for route in live.svc.http.application.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info()
        path = info.get("formatter") or info.get("path") or f"{info['prefix']}/{{filename}}"
        served.add((route.method.lower(), path))
    described = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert served == described


OPERATIONS = [(p, m) for p, ops in openapi.document()["paths"].items() for m in ops if p not in STREAMS]


@pytest.mark.parametrize("path,method", OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_no_5xx_and_every_answer_as_described(api, path, method):
    operation = api[path][method]
    modes = [operation.as_strategy(GenerationMode.POSITIVE)]
    if operation.path_parameters or operation.query or operation.body:  # something to get wrong
        modes.append(operation.as_strategy(GenerationMode.NEGATIVE))
    token = MONITOR_TOKEN if (method, path) == ("post", "/api/v1/field-reports") else API_TOKEN
    headers = {"Authorization": f"Bearer {token}"}

    @seed(22)
    @settings(max_examples=CASES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(modes))
    def run(case):
        case.call_and_validate(headers=headers, checks=CHECKS)
    run()
