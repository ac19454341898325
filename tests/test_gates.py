"""Conventions as rules: ruff (lint) over the tree. What it holds the code to, and why:
pyproject.toml [tool.ruff]. An exception is a line-level ignore with its reason."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(*cmd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_ruff_finds_nothing():
    r = _run(sys.executable, "-m", "ruff", "check", "--quiet", "--output-format", "concise", ".")
    assert r.returncode == 0, r.stdout + r.stderr
