"""/settings: the user's time zone (buttons for common zones, or a typed name or offset)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message

from bot import keyboards, texts, timezones
from bot.callbacks import Menu, MenuAction, SetZone
from bot.clock import Clock
from bot.handlers.common import answer, show
from storage.users import UsersRepo


class SettingsFlow(StatesGroup):
    zone = State()  # typing a zone name or an offset


async def _zone_of(user_id: int, users: UsersRepo) -> str | None:
    user = await users.get(user_id)
    return timezones.parse(user.timezone) if user is not None and user.timezone else None


async def settings_command(
    message: Message, state: FSMContext, users: UsersRepo, clock: Clock
) -> None:
    assert message.from_user is not None
    zone = await _zone_of(message.from_user.id, users)
    await state.set_state(SettingsFlow.zone)
    await message.answer(
        texts.settings(zone, clock.now()), reply_markup=keyboards.time_zones(zone)
    )


async def settings_button(
    query: CallbackQuery, state: FSMContext, users: UsersRepo, clock: Clock
) -> None:
    await answer(query)
    zone = await _zone_of(query.from_user.id, users)
    await state.set_state(SettingsFlow.zone)
    await show(query, texts.settings(zone, clock.now()), keyboards.time_zones(zone))


async def pick_zone(
    query: CallbackQuery,
    callback_data: SetZone,
    state: FSMContext,
    users: UsersRepo,
    clock: Clock,
) -> None:
    zone = timezones.parse(callback_data.zone)
    if zone is None:  # a button the bot did not make
        await answer(query, texts.not_yours(), alert=True)
        return
    await users.set_timezone(query.from_user.id, zone)
    await state.clear()
    await answer(query)
    with timezones.use(zone):  # this answer is already in the new zone
        await show(query, texts.zone_set(zone, clock.now()), keyboards.time_zones(zone))


async def typed_zone(message: Message, state: FSMContext, users: UsersRepo, clock: Clock) -> None:
    assert message.from_user is not None
    zone = timezones.parse(message.text)
    if zone is None:
        current = await _zone_of(message.from_user.id, users)
        await message.answer(
            texts.zone_invalid(message.text or ""), reply_markup=keyboards.time_zones(current)
        )
        return
    await users.set_timezone(message.from_user.id, zone)
    await state.clear()
    with timezones.use(zone):
        await message.answer(
            texts.zone_set(zone, clock.now()), reply_markup=keyboards.time_zones(zone)
        )


def setup() -> Router:
    router = Router(name="settings")
    router.message.register(settings_command, Command("settings"))
    router.callback_query.register(settings_button, Menu.filter(F.action == MenuAction.SETTINGS))
    router.callback_query.register(pick_zone, SetZone.filter())
    router.message.register(typed_zone, SettingsFlow.zone, F.text, ~F.text.startswith("/"))
    return router
