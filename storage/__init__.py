"""The bot's SQLite storage: users, orders, received SMS and sent reminders.

Open with ``await Storage.open(path)`` (or ``":memory:"``); every timestamp is aware UTC and
every amount a :class:`~bot.money.Money` of Decimal, stored as text.
"""

from storage.db import Database, NestedTransactionError, StorageError, Tx
from storage.messages import MessagesRepo
from storage.migrations import MIGRATIONS, Migration, MigrationError
from storage.models import OrderStatus, StoredMessage, StoredOrder, User
from storage.orders import DuplicateOrder, OrdersRepo, UnknownUser
from storage.reminders import RemindersRepo
from storage.store import Storage
from storage.users import UsersRepo

__all__ = [
    "MIGRATIONS",
    "Database",
    "DuplicateOrder",
    "MessagesRepo",
    "Migration",
    "MigrationError",
    "NestedTransactionError",
    "OrderStatus",
    "OrdersRepo",
    "RemindersRepo",
    "Storage",
    "StorageError",
    "StoredMessage",
    "StoredOrder",
    "Tx",
    "UnknownUser",
    "User",
    "UsersRepo",
]
