"""Identity: the built-in development identity provider, bearer-token validation, permissions."""

from .keys import DevelopmentKeys
from .principal import Permission, Principal
from .tokens import DEFAULT_DELEGATED_SCOPES, is_delegated, mint_token
from .validation import TokenValidator

__all__ = [
    "DEFAULT_DELEGATED_SCOPES",
    "DevelopmentKeys",
    "Permission",
    "Principal",
    "TokenValidator",
    "is_delegated",
    "mint_token",
]
