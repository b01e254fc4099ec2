"""API tokens: made with ``curate token create --role ROLE --name NAME``, shown once, stored as a SHA-256 hash.

A token is ``cur_`` and 32 random bytes (URL-safe base64): far too many to guess, so a fast hash is enough to
keep the stored value useless to whoever reads the store (the SQL surface refuses the table anyway). Roles are
ordered: ``viewer`` (read, SQL) < ``lead`` (review push / pull / apply, snapshots, ingest and runs) <
``admin`` (approve, export, train, evaluate, tokens).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from curation.errors import UsageError
from curation.sql import locked_reader
from curation.store import Store
from curation.store.store import utcnow

ROLES = ("viewer", "lead", "admin")
PREFIX = "cur_"


def role_rank(role: str) -> int:
    try:
        return ROLES.index(role)
    except ValueError:
        raise UsageError(f"unknown role {role!r}: one of {', '.join(ROLES)}") from None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    name: str
    role: str


def create_token(store: Store, role: str, name: str) -> tuple[str, TokenInfo]:
    """A new token with ``role``: (the token, shown once and never stored, its info)."""
    role_rank(role)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise UsageError("a token needs a name of 1 to 100 characters (who or what uses it)")
    token = PREFIX + secrets.token_urlsafe(32)
    info = TokenInfo(str(uuid.uuid4()), name, role)
    store.init()
    with store.writer() as con:
        con.execute("INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?, NULL)",
                    [info.token_id, name, role, token_hash(token), utcnow()])
    return token, info


def verify_token(store: Store, token: str | None) -> TokenInfo | None:
    """The live token ``token`` is, or None (unknown, revoked, malformed)."""
    if not token or not token.startswith(PREFIX) or len(token) > 200:
        return None
    with locked_reader(store) as con:
        row = con.execute("SELECT token_id, name, role FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
                          [token_hash(token)]).fetchone()
    return TokenInfo(*row) if row else None


def list_tokens(store: Store) -> list[dict]:
    with locked_reader(store) as con:
        rows = con.execute("SELECT token_id, name, role, created_at, revoked_at FROM api_tokens "
                           "ORDER BY created_at, token_id").fetchall()
    return [{"token_id": r[0], "name": r[1], "role": r[2], "created_at": r[3].isoformat(),
             "revoked_at": r[4].isoformat() if r[4] else None} for r in rows]


def revoke_token(store: Store, token_id: str) -> bool:
    """Revoke a token by id; False when there is no live token with that id."""
    with store.writer() as con:
        n = con.execute("UPDATE api_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL RETURNING 1",
                        [utcnow(), token_id]).fetchall()
    return bool(n)
