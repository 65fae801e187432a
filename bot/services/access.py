"""Who may spend money: access modes, approvals, and admin blocks.

``private`` (the default): the admins (``ADMIN_IDS``) and users an admin approved may buy; anyone
else may ask for access. ``public``: anyone may buy, paying from their own wallet. A user an
admin blocked is refused everywhere. Admins can never be blocked or lose access.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from storage.models import Access, User
from storage.users import UsersRepo


class AccessMode(enum.StrEnum):
    PRIVATE = "private"
    PUBLIC = "public"


class RequestOutcome(enum.StrEnum):
    SENT = "sent"  # new: the admins are to be told
    PENDING = "pending"  # asked before, not answered yet
    APPROVED = "approved"  # already may buy
    DENIED = "denied"  # an admin said no


@dataclass(frozen=True, slots=True)
class AccessService:
    users: UsersRepo
    admins: frozenset[int]
    mode: AccessMode = AccessMode.PRIVATE

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.admins

    def is_blocked(self, user: User | None) -> bool:
        return user is not None and user.blocked and not self.is_admin(user.id)

    def may_buy(self, user: User | None, user_id: int) -> bool:
        if self.is_admin(user_id):
            return True
        if user is None or user.blocked:
            return False
        return self.mode is AccessMode.PUBLIC or user.access is Access.APPROVED

    async def request(self, user_id: int) -> RequestOutcome:
        user = await self.users.get(user_id)
        if user is None:
            return RequestOutcome.PENDING
        if self.may_buy(user, user_id):
            return RequestOutcome.APPROVED
        if user.access is Access.DENIED:
            return RequestOutcome.DENIED
        if await self.users.set_access(user_id, Access.REQUESTED, only_from=(Access.NONE,)):
            return RequestOutcome.SENT
        return RequestOutcome.PENDING

    async def decide(self, user_id: int, approve: bool) -> bool:
        """An admin's answer; True when it changed something (so the user is told once)."""
        target = Access.APPROVED if approve else Access.DENIED
        return await self.users.set_access(
            user_id, target, only_from=tuple(a for a in Access if a is not target)
        )

    async def block(self, user_id: int, blocked: bool) -> bool:
        if self.is_admin(user_id):
            return False
        return await self.users.set_blocked(user_id, blocked)
