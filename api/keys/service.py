"""API keys: random 256-bit secrets, shown once, stored as SHA-256, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from api.errors import NotFound
from db.models import ApiKey, Department, utcnow

PREFIX = "cs_"


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(
    session: Session, *, name: str, department: str | None = None, admin: bool = False
) -> tuple[ApiKey, str]:
    """Create a key; return the row and the plaintext key (the only time it exists)."""
    department_id = None
    if department is not None:
        dept = session.scalars(select(Department).where(col(Department.slug) == department)).first()
        if dept is None:
            raise NotFound(f"No department '{department}'.")
        department_id = dept.id
    token = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name,
        department_id=department_id,
        admin=admin,
        key_hash=hash_key(token),
        prefix=token[:10],
        created_at=utcnow(),
    )
    session.add(key)
    session.flush()
    return key, token


def authenticate(session: Session, token: str) -> ApiKey | None:
    digest = hash_key(token)
    key = session.scalars(select(ApiKey).where(col(ApiKey.key_hash) == digest)).first()
    if key is None:
        return None
    if not hmac.compare_digest(key.key_hash, digest) or key.revoked_at is not None:
        return None
    return key


def list_keys(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        select(ApiKey, col(Department.slug))
        .outerjoin(Department, col(Department.id) == col(ApiKey.department_id))
        .order_by(col(ApiKey.id))
    ).all()
    return [
        {
            "id": key.id,
            "name": key.name,
            "department": slug,
            "admin": key.admin,
            "created_at": key.created_at,
            "revoked_at": key.revoked_at,
        }
        for key, slug in rows
    ]


def revoke(session: Session, key_id: int) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key {key_id}.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key
