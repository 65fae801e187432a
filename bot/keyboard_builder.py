"""aiogram's InlineKeyboardBuilder without its deep copies.

aiogram's builder deep-copies the whole markup on every ``add`` (so on every ``button``) and
again on ``as_markup``: quadratic in the buttons, and the largest single cost of drawing a
screen (7 % of the bot's CPU in the updates benchmark, issue #13). Our builders are made,
filled and turned into a markup in one function and never touched after, so copying the rows
(not the buttons) keeps the builder's own list apart from what it hands out.
"""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton
from aiogram.utils.keyboard import InlineKeyboardBuilder as _AiogramBuilder


class InlineKeyboardBuilder(_AiogramBuilder):
    def export(self) -> list[list[InlineKeyboardButton]]:
        return [list(row) for row in self._markup]
