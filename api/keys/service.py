"""API keys: random 256-bit secrets, shown once, stored as SHA-256, compared in constant time.

A key may carry an expiry; a department may hold several valid keys at once, so a rotation
is: create the new key, switch the job over, revoke the old one (or let it expire). Creating
and revoking keys is audited in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from api.audit import service as audit
from api.errors import BadRequest, NotFound
from db.models import ApiKey, Department, utcnow

PREFIX = "cs_"


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(
    session: Session,
    *,
    name: str,
    department: str | None = None,
    admin: bool = False,
    expires_at: dt.datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; return the row and the plaintext key (the only time it exists).

    ``expires_at`` (naive UTC) must be in the future; None means the key never expires."""
    now = utcnow()
    if expires_at is not None and expires_at <= now:
        raise BadRequest(f"The expiry {expires_at:%Y-%m-%d %H:%M} UTC is not in the future.")
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
        created_at=now,
        expires_at=expires_at,
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        key=None,
        action="key.create",
        target=str(key.id),
        department=department,
        detail={
            "name": name,
            "admin": admin,
            "prefix": key.prefix,
            "expires_at": f"{expires_at:%Y-%m-%dT%H:%M:%SZ}" if expires_at else None,
        },
    )
    return key, token


def authenticate(session: Session, token: str) -> ApiKey | None:
    digest = hash_key(token)
    key = session.scalars(select(ApiKey).where(col(ApiKey.key_hash) == digest)).first()
    if key is None:
        return None
    if not hmac.compare_digest(key.key_hash, digest) or key.revoked_at is not None:
        return None
    if is_expired(key):
        return None
    return key


def is_expired(key: ApiKey, now: dt.datetime | None = None) -> bool:
    return key.expires_at is not None and key.expires_at <= (now or utcnow())


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
            "expires_at": key.expires_at,
        }
        for key, slug in rows
    ]


def revoke(session: Session, key_id: int) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key {key_id}.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(
            session,
            key=None,
            action="key.revoke",
            target=str(key.id),
            department=audit.department_slug(session, key.department_id),
            detail={"name": key.name, "prefix": key.prefix},
        )
    return key
