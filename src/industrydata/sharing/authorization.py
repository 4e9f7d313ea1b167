"""Who may act: the one check, after token validation, that a caller may use the API at all.

A delegated caller (a token with ``scp``) acts for a user: that user must be in the directory
of the token's tenant and hold the Global Administrator role, the role School Data Sync
requires of the people who set it up. An application caller (``roles`` only) is not a
directory user; its roles, checked per operation, are its authority.
"""

from __future__ import annotations

from ..directory import get_user
from ..errors import AccessDenied
from ..identity import Principal
from ..store import Store

__all__ = ["authorize_caller"]


def authorize_caller(store: Store, principal: Principal) -> None:
    """Raise AccessDenied unless ``principal`` is an application or an administrator user."""
    if principal.is_application:
        return
    with store.reading() as session:
        user = get_user(session, tenant_id=principal.tenant_id, object_id=principal.object_id)
    if user is None:
        raise AccessDenied(
            "The signed-in user is not a user of this tenant's directory; only the tenant's "
            "Global Administrators may use this API."
        )
    if not user.is_global_admin:
        raise AccessDenied(
            "The signed-in user does not hold the Global Administrator role of this tenant; "
            "only the tenant's Global Administrators may use this API."
        )
