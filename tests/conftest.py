"""Test-wide setup: a throw-away ledger signing key, so no test writes to the home folder."""

import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

_KEY_DIR = tempfile.mkdtemp(prefix="aicity-test-key-")
_KEY = Path(_KEY_DIR) / "ledger-ed25519.pem"
_KEY.write_bytes(Ed25519PrivateKey.generate().private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
_KEY.chmod(0o600)
os.environ.setdefault("AICITY_LEDGER_KEY", str(_KEY))
