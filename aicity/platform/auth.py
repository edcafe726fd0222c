"""Role-based access: bearer tokens (or ``X-Auth-Token``) → a person and a role; one declared table says which
role may do what. No endpoint is open: a request without a known token is refused."""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aicity.core.errors import UserError, unreadable
from aicity.platform.errors import NgsiError

ROLES = ("viewer", "operator", "engineer", "admin")
"""Ordered: each role may do what the ones before it may."""
DEVICE = "device"
"""A device may write only its own entities (ids starting with its ``entities`` prefix), and read nothing else."""

PERMISSIONS: dict[str, str] = {
    "ngsi.read": "viewer",           # entities, types, attributes, temporal, subscriptions (read)
    "ngsi.write": "engineer",        # entities and batches
    "subscriptions.write": "engineer",
    "city.read": "viewer",           # status, KPIs, decisions, approvals, autonomy, ledger head
    "approvals.decide": "operator",  # approve / reject
    "city.stop": "operator",         # stop and resume
    "autonomy.set": "engineer",
    "devices.command": "operator",   # actuator commands over MQTT
    "whatif.run": "operator",        # candidate responses on copies of the city (simulations: costly)
    "tenants.admin": "admin",
}
"""Action → the lowest role allowed."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: a person (or device) and a role."""

    person: str
    role: str
    entities: str | None = None

    def may(self, action: str) -> bool:
        """True when this role may do ``action``."""
        need = PERMISSIONS[action]
        if self.role == DEVICE:
            return action == "ngsi.write"
        return ROLES.index(self.role) >= ROLES.index(need)

    def may_write(self, entity_id: str) -> bool:
        """A device writes only its own entities; other roles any."""
        return self.role != DEVICE or (self.entities is not None and entity_id.startswith(self.entities))


class Auth:
    """Tokens → principals, compared in constant time."""

    def __init__(self, tokens: Mapping[str, Principal]) -> None:
        self.tokens = dict(tokens)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Auth:
        """``{"tokens": {"<token>": {"person": "...", "role": "...", "entities": "urn:...:"}}}``."""
        raw = data.get("tokens")
        if not isinstance(raw, Mapping) or not raw:
            raise UserError("the access file needs a non-empty \"tokens\" object")
        out = {}
        for token, spec in raw.items():
            if not isinstance(spec, Mapping) or len(str(token)) < 16:
                raise UserError("each token must be at least 16 characters and map to {person, role}")
            role = spec.get("role")
            if role not in (*ROLES, DEVICE):
                raise UserError(f"role {role!r} is not one of {', '.join((*ROLES, DEVICE))}")
            if role == DEVICE and not isinstance(spec.get("entities"), str):
                raise UserError("a device token needs \"entities\": the id prefix it may write")
            out[str(token)] = Principal(str(spec.get("person") or role), str(role), spec.get("entities"))
        return cls(out)

    @classmethod
    def load(cls, path: Path) -> Auth:
        """Read an access file (JSON)."""
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except OSError as exc:
            raise UserError(f"cannot read the access file {path}: {exc.strerror}") from exc
        except (ValueError, RecursionError) as exc:
            raise UserError(f"the access file {path} is not JSON: {unreadable(exc)}") from exc

    @classmethod
    def generated(cls, path: Path) -> Auth:
        """A fresh admin token written to ``path`` (mode 0600) when no access file is given."""
        token = secrets.token_urlsafe(24)
        path.write_text(json.dumps({"tokens": {token: {"person": "admin", "role": "admin"}}}, indent=2))
        path.chmod(0o600)
        return cls({token: Principal("admin", "admin")})

    def principal(self, authorization: str | None, x_token: str | None) -> Principal:
        """The caller of a request; 401 without a known token."""
        token = x_token
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer" or not value:
                raise NgsiError("Unauthorized", "use Authorization: Bearer <token>")
            token = value.strip()
        if not token:
            raise NgsiError("Unauthorized", "a token is needed (Authorization: Bearer <token>)")
        for known, who in self.tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return who
        raise NgsiError("Unauthorized", "unknown token")

    def check(self, who: Principal, action: str) -> None:
        """403 when ``who`` may not do ``action``."""
        if not who.may(action):
            raise NgsiError("Forbidden", f"{who.person} ({who.role}) may not {action.replace('.', ' ')}: it needs "
                            f"{PERMISSIONS[action]} or above")
