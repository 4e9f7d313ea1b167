"""The local tenant directory, kept in the store (an Entra-backed one would answer the same).

Global Administrator is the one administrative role it knows: School Data Sync requires it,
and Entra ID has no built-in education-administrator role that would fit better.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store import DirectoryUser

__all__ = [
    "GLOBAL_ADMINISTRATOR_ROLE_TEMPLATE_ID",
    "add_user",
    "get_user",
    "global_administrators",
    "has_users",
    "is_global_administrator",
]

GLOBAL_ADMINISTRATOR_ROLE_TEMPLATE_ID = "62e90394-69f5-4237-9190-012177145e10"


def add_user(
    session: Session,
    *,
    tenant_id: str,
    object_id: str,
    display_name: str,
    user_principal_name: str | None = None,
    is_global_admin: bool = False,
) -> DirectoryUser:
    """Add or replace a user of ``tenant_id``'s directory (the caller commits)."""
    user = session.get(DirectoryUser, (tenant_id.lower(), object_id.lower()))
    if user is None:
        user = DirectoryUser(tenant_id=tenant_id.lower(), object_id=object_id.lower())
        session.add(user)
    user.display_name = display_name
    user.user_principal_name = user_principal_name
    user.is_global_admin = is_global_admin
    return user


def get_user(session: Session, *, tenant_id: str, object_id: str) -> DirectoryUser | None:
    return session.get(DirectoryUser, (tenant_id.lower(), object_id.lower()))


def has_users(session: Session, *, tenant_id: str) -> bool:
    """Whether ``tenant_id``'s directory holds any user."""
    query = select(DirectoryUser.object_id).where(DirectoryUser.tenant_id == tenant_id.lower())
    return session.scalar(query.limit(1)) is not None


def is_global_administrator(session: Session, *, tenant_id: str, object_id: str) -> bool:
    """Whether the user exists in the tenant and holds the Global Administrator role."""
    user = get_user(session, tenant_id=tenant_id, object_id=object_id)
    return bool(user and user.is_global_admin)


def global_administrators(session: Session, *, tenant_id: str) -> list[DirectoryUser]:
    """The tenant's Global Administrators, by display name."""
    query = (
        select(DirectoryUser)
        .where(DirectoryUser.tenant_id == tenant_id.lower(), DirectoryUser.is_global_admin)
        .order_by(DirectoryUser.display_name, DirectoryUser.object_id)
    )
    return list(session.scalars(query))
