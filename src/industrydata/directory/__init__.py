"""The tenant directory: users and who holds the Global Administrator role."""

from .service import (
    GLOBAL_ADMINISTRATOR_ROLE_TEMPLATE_ID,
    add_user,
    get_user,
    global_administrators,
    has_users,
    is_global_administrator,
)

__all__ = [
    "GLOBAL_ADMINISTRATOR_ROLE_TEMPLATE_ID",
    "add_user",
    "get_user",
    "global_administrators",
    "has_users",
    "is_global_administrator",
]
