"""The storage facade the bot wires in: one database and its repositories."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from storage.db import Database
from storage.messages import MessagesRepo
from storage.orders import OrdersRepo
from storage.reminders import RemindersRepo
from storage.users import UsersRepo


class Storage:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.users = UsersRepo(db)
        self.orders = OrdersRepo(db)
        self.messages = MessagesRepo(db)
        self.reminders = RemindersRepo(db)

    @classmethod
    async def open(cls, path: str | Path) -> Storage:
        return cls(await Database.open(path))

    async def close(self) -> None:
        await self.db.close()

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
