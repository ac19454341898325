"""The OpenAPI 3.1 description of the HTTP API (`openapi.yaml` beside this module, data kept in
step with the routes by tests/test_openapi.py), served as JSON at GET /api/v1/openapi.json."""
from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

PATH = "/api/v1/openapi.json"


@cache
def document() -> dict[str, Any]:
    text = resources.files("geowarn.daemon.http").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)
