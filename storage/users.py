"""Bot users, keyed by Telegram user id."""

from __future__ import annotations

from datetime import datetime

from storage.codec import decode_time, encode_time
from storage.db import Database, Row, StorageError
from storage.models import Access, User


def _user(row: Row) -> User:
    return User(
        id=int(row["id"]),
        language=row["language"],
        first_seen=decode_time(row["first_seen"]),
        blocked_bot=bool(row["blocked_bot"]),
        telegram_language=row["telegram_language"],
        access=Access(row["access"]),
        blocked=bool(row["blocked"]),
        full_name=row["full_name"],
        username=row["username"],
        timezone=row["timezone"],
    )


class UsersRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def ensure(self, user_id: int, language: str | None, now: datetime) -> User:
        """Insert the user if new (with ``language``); return the stored row.

        An existing user's language is kept. A user who writes to the bot has evidently
        not blocked it, so ``blocked_bot`` is cleared. A known user who has not blocked the bot
        is one read, no write (this runs for every update).
        """
        known = await self._db.fetchone("SELECT * FROM users WHERE id = ?", (user_id,))
        if known is not None and not known["blocked_bot"]:
            return _user(known)
        async with self._db.transaction() as tx:
            await tx.execute(
                "INSERT INTO users (id, language, first_seen) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET blocked_bot = 0 WHERE users.blocked_bot = 1",
                (user_id, language, encode_time(now)),
            )
            row = await tx.fetchone("SELECT * FROM users WHERE id = ?", (user_id,))
        if row is None:
            raise StorageError(f"user {user_id} vanished right after being written")
        return _user(row)

    async def set_telegram_language(self, user_id: int, language: str | None) -> bool:
        """Remember the language Telegram reports (changed only when it differs)."""
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE users SET telegram_language = ? "
                "WHERE id = ? AND telegram_language IS DISTINCT FROM ?",
                (language, user_id, language),
            )
        return changed == 1

    async def set_profile(self, user_id: int, full_name: str | None, username: str | None) -> bool:
        """Remember the name and @username Telegram reports (written only when they differ)."""
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE users SET full_name = ?, username = ? "
                "WHERE id = ? AND (full_name IS DISTINCT FROM ? OR username IS DISTINCT FROM ?)",
                (full_name, username, user_id, full_name, username),
            )
        return changed == 1

    async def find_by_username(self, username: str) -> User | None:
        """The user whose @username this is (case-insensitive; with or without the @)."""
        name = username.strip().removeprefix("@")
        if not name:
            return None
        row = await self._db.fetchone(
            "SELECT * FROM users WHERE lower(username) = lower(?) ORDER BY id LIMIT 1", (name,)
        )
        return None if row is None else _user(row)

    async def page(
        self, query: str | None = None, *, limit: int = 10, offset: int = 0
    ) -> tuple[list[User], int]:
        """A page of users, newest first, and how many match in all.

        ``query`` matches a part of the name or the @username, or the whole id, whatever the
        case. SQLite's ``LIKE`` ignores case for ASCII letters only, so a few case forms of
        the query are tried (Cyrillic "иван" also finds "Иван" and "ИВАН"); PostgreSQL's
        ``ILIKE`` ignores case in every alphabet.
        """
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        where = "1 = 1"
        params: list[object] = []
        text = (query or "").strip().removeprefix("@")
        if text:
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            forms = sorted(
                {escaped, escaped.lower(), escaped.upper(), escaped.title(), escaped.capitalize()}
            )
            like = "ILIKE" if self._db.dialect == "postgresql" else "LIKE"
            likes = " OR ".join(
                f"full_name {like} ? ESCAPE '\\' OR username {like} ? ESCAPE '\\'" for _ in forms
            )
            where = f"({likes} OR CAST(id AS TEXT) = ?)"
            params = [p for form in forms for p in (f"%{form}%", f"%{form}%")]
            params.append(text)
        total = await self._db.fetchone(
            f"SELECT COUNT(*) FROM users WHERE {where}",  # noqa: S608 - built from constants
            params,
        )
        rows = await self._db.fetchall(
            f"SELECT * FROM users WHERE {where} "  # noqa: S608 - built from constants
            "ORDER BY first_seen DESC, id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [_user(row) for row in rows], int(total[0]) if total else 0

    async def set_access(
        self, user_id: int, access: Access, *, only_from: tuple[Access, ...] | None = None
    ) -> bool:
        """Change the user's access; with ``only_from``, only from one of those states."""
        allowed = [a.value for a in only_from] if only_from else [a.value for a in Access]
        marks = ", ".join("?" * len(allowed))
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                f"UPDATE users SET access = ? WHERE id = ? AND access IN ({marks})",  # noqa: S608
                (access.value, user_id, *allowed),
            )
        return changed == 1

    async def set_blocked(self, user_id: int, blocked: bool) -> bool:
        """An admin blocks (or unblocks) a user; False if the user is unknown."""
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE users SET blocked = ? WHERE id = ?", (int(blocked), user_id)
            )
        return changed == 1

    async def get(self, user_id: int) -> User | None:
        row = await self._db.fetchone("SELECT * FROM users WHERE id = ?", (user_id,))
        return None if row is None else _user(row)

    async def set_language(self, user_id: int, language: str | None) -> bool:
        """Store the user's chosen language; False if the user is unknown."""
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE users SET language = ? WHERE id = ?", (language, user_id)
            )
        return changed == 1

    async def set_timezone(self, user_id: int, timezone: str | None) -> bool:
        """Store the user's time zone (a name ``bot.timezones.parse`` gave: an IANA zone,
        "UTC" or "UTC+05:30"; None: back to UTC); False if the user is unknown."""
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE users SET timezone = ? WHERE id = ?", (timezone, user_id)
            )
        return changed == 1

    async def mark_blocked_bot(self, user_id: int, blocked: bool = True) -> bool:
        """Record that sending to the user fails because they blocked the bot."""
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE users SET blocked_bot = ? WHERE id = ?", (int(blocked), user_id)
            )
        return changed == 1
