"""aiogram's FSM in the bot's own database, so a step waiting for typed input (a search)
survives a restart. One row per storage key: the state and the data as a JSON object."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)

from storage.codec import encode_time
from storage.db import Database


class SqliteStorage(BaseStorage):
    def __init__(self, db: Database, key_builder: KeyBuilder | None = None) -> None:
        self._db = db
        self._keys = key_builder or DefaultKeyBuilder(with_destiny=True)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        if await self.get_state(key) == value:
            return  # most screens clear a state nobody is in: one read, no write
        async with self._db.transaction() as tx:
            await tx.execute(
                "INSERT INTO fsm (key, state, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET state = excluded.state, "
                "updated_at = excluded.updated_at",
                (self._keys.build(key), value, _now()),
            )

    async def get_state(self, key: StorageKey) -> str | None:
        row = await self._db.fetchone(
            "SELECT state FROM fsm WHERE key = ?", (self._keys.build(key),)
        )
        return None if row is None else row[0]

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        text = json.dumps(dict(data), ensure_ascii=False, separators=(",", ":"))
        if await self.get_data(key) == dict(data):
            return  # unchanged (cleared data that was empty): no write
        async with self._db.transaction() as tx:
            await tx.execute(
                "INSERT INTO fsm (key, data, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET data = excluded.data, "
                "updated_at = excluded.updated_at",
                (self._keys.build(key), text, _now()),
            )

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        row = await self._db.fetchone(
            "SELECT data FROM fsm WHERE key = ?", (self._keys.build(key),)
        )
        if row is None:
            return {}
        value = json.loads(row[0])
        return value if isinstance(value, dict) else {}

    async def close(self) -> None:
        """The database is closed by its owner (the app)."""


def _now() -> str:
    return encode_time(datetime.now(UTC))
