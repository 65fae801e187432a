"""Messages the bot sends on its own, rendered in each recipient's language."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import I18n

from bot import timezones
from bot.i18n import pick_locale
from bot.services.notifier import Notifier
from storage.users import UsersRepo

Render = Callable[[], tuple[str, InlineKeyboardMarkup | None]]


class Messenger:
    """``tell(user, render)``: ``render`` runs in the user's locale and time zone (texts and
    keyboards)."""

    def __init__(self, notifier: Notifier, users: UsersRepo, i18n: I18n) -> None:
        self._notifier = notifier
        self._users = users
        self._i18n = i18n

    async def locale(self, user_id: int) -> str:
        user = await self._users.get(user_id)
        if user is None:
            return self._i18n.default_locale
        return pick_locale(user.language, user.telegram_language, self._i18n.available_locales)

    async def _zone(self, user_id: int) -> str | None:
        user = await self._users.get(user_id)
        return None if user is None else user.timezone

    async def tell(self, user_id: int, render: Render) -> bool:
        """True once Telegram accepted the message (see :meth:`Notifier.send`)."""
        locale, zone = await self.locale(user_id), await self._zone(user_id)
        with self._i18n.context(), self._i18n.use_locale(locale), timezones.use(zone):
            text, markup = render()
        return bool(await self._notifier.send(user_id, text, markup))

    async def tell_all(self, user_ids: Iterable[int], render: Render) -> None:
        for user_id in sorted(set(user_ids)):
            await self.tell(user_id, render)
