"""Test-wide setup: a throw-away ledger signing key, so no test writes to the home folder."""

import os
import tempfile
from pathlib import Path

_KEY_DIR = tempfile.mkdtemp(prefix="aicity-test-key-")
os.environ.setdefault("AICITY_LEDGER_KEY", str(Path(_KEY_DIR) / "ledger-ed25519.pem"))
