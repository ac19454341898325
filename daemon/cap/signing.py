"""Optional XML-DSig of CAP messages (CAP 1.2 §3.3.2.1: an enveloped signature as the alert's
last element), with signxml — the `cap-sign` extra: `pip install geowarn[cap-sign]`."""
from __future__ import annotations

import os
from pathlib import Path

from lxml import etree

from .settings import CapSigning


class Signer:
    def __init__(self, settings: CapSigning):
        try:
            import signxml  # noqa: F401  (optional: only when a key is configured)
        except ImportError:
            raise ValueError("cap.sign needs signxml: pip install 'geowarn[cap-sign]'") from None
        try:
            self.key = Path(settings.key_file).read_bytes()
            self.cert = Path(settings.cert_file).read_bytes()
        except OSError as e:
            raise ValueError(f"cap.sign: cannot read the key or certificate: {e}") from None
        self.passphrase = os.environ.get(settings.password_env, "").encode() if settings.password_env else None

    def sign(self, alert: etree._Element) -> etree._Element:
        from signxml import XMLSigner, methods

        signer = XMLSigner(method=methods.enveloped, signature_algorithm="rsa-sha256", digest_algorithm="sha256",
                           c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#")
        return signer.sign(alert, key=self.key, cert=self.cert, passphrase=self.passphrase or None)
