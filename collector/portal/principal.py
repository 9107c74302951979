"""Who is asking: a helpdesk user, a customer's user, or the system itself."""

from __future__ import annotations

from dataclasses import dataclass

HELPDESK = "helpdesk"
CUSTOMER = "customer"
SYSTEM_ROLE = "system"
ROLES = (HELPDESK, CUSTOMER)


@dataclass(frozen=True)
class Principal:
    """An authenticated user (or the system), and the customer it is scoped to."""

    user_id: int | None
    username: str
    role: str  # helpdesk, customer, system
    customer_id: str | None  # a customer user's; None for the helpdesk and the system

    @property
    def is_helpdesk(self) -> bool:
        """The helpdesk (and the system) see and act for every customer."""
        return self.role in (HELPDESK, SYSTEM_ROLE)

    def sees(self, customer_id: str | None) -> bool:
        """Whether this principal may see the customer's objects (others are not found)."""
        return self.is_helpdesk or (customer_id is not None and customer_id == self.customer_id)

    def to_dict(self) -> dict[str, object]:
        return {
            "user_id": self.user_id,
            "username": self.username,
            "role": self.role,
            "customer_id": self.customer_id,
        }


# The actor of changes no user made (the CLI, the daily run).
SYSTEM = Principal(None, "system", SYSTEM_ROLE, None)
