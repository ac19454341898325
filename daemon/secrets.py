"""Secrets come from the environment or from systemd credentials ($CREDENTIALS_DIRECTORY,
`LoadCredential=`), never from configuration files in the repository."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def secret(env_name: str | None, credential: str | None = None,
           environ: Mapping[str, str] = os.environ) -> str | None:
    if env_name and environ.get(env_name):
        return environ[env_name]
    creds = environ.get("CREDENTIALS_DIRECTORY")
    if credential and creds:
        path = Path(creds) / credential
        if path.is_file():
            return path.read_text(encoding="utf-8").strip()
    return None
