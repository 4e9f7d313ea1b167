"""Who is calling, and the permissions of contract §8."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ..errors import AccessDenied

__all__ = ["Permission", "Principal"]


class Permission(str, Enum):
    """Microsoft Graph permission names used by the industryData outgoing flow API."""

    FLOW_READ = "IndustryData-OutboundFlow.Read.All"
    FLOW_READ_WRITE = "IndustryData-OutboundFlow.ReadWrite.All"
    RUN_READ = "IndustryData-Run.Read.All"
    RUN_START = "IndustryData-Run.Start"


@dataclass(frozen=True)
class Principal:
    """The validated caller: tenant, object id, and delegated scopes or application roles."""

    tenant_id: str
    object_id: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_application(self) -> bool:
        return not self.scopes and bool(self.roles)

    def require_any(self, *permissions: Permission) -> None:
        """Raise AccessDenied unless the token grants one of ``permissions``."""
        granted = self.scopes | self.roles
        if not any(permission.value in granted for permission in permissions):
            names = " or ".join(permission.value for permission in permissions)
            raise AccessDenied(f"The token does not grant {names}.")
