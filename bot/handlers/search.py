"""Search anywhere: a service or country name typed where no step waits for text starts the
purchase flow there (a service: its countries; a country: the services sold there; several:
a button each; nothing: "nothing matches" with Search again and Menu)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n

from bot import keyboards, texts
from bot.callbacks import CountryServices, Menu, MenuAction
from bot.handlers.buy import BuyFlow
from bot.handlers.common import answer, show
from bot.services.catalog import CatalogService, MergedCatalog


class SearchFlow(StatesGroup):
    in_country = State()  # the services sold in one country; typing filters them. data: country


def _languages(i18n: I18n) -> tuple[str, ...]:
    """The user's language first (it orders the countries), then every other one we have."""
    return tuple(dict.fromkeys((i18n.current_locale, *i18n.available_locales)))


def _names(merged: MergedCatalog, codes: list[str] | tuple[str, ...]) -> dict[str, str]:
    return {code: merged.name(code) for code in codes}


def _country_services_screen(
    merged: MergedCatalog,
    country: str,
    page: int,
    codes: list[str] | tuple[str, ...] | None = None,
    query: str | None = None,
) -> tuple[str, InlineKeyboardMarkup]:
    codes = list(codes) if codes is not None else merged.services_in(country)
    total = keyboards.pages(len(codes), keyboards.SERVICES_PER_PAGE)
    page = min(max(page, 0), total - 1)
    return (
        texts.country_services(country, page, total, query),
        keyboards.country_services(country, codes, page, _names(merged, codes)),
    )


async def _search(
    message: Message, state: FSMContext, catalog: CatalogService, i18n: I18n
) -> None:
    result = await catalog.search(message.text, _languages(i18n))
    if result.empty:
        await state.set_state(None)
        await message.answer(
            texts.nothing_found(message.text or ""), reply_markup=keyboards.nothing_found()
        )
        return
    merged = await catalog.get()
    if len(result.services) == 1 and not result.countries:
        service = result.services[0]
        isos = merged.countries(service, i18n.current_locale)
        total = keyboards.pages(len(isos), keyboards.COUNTRIES_PER_PAGE)
        await state.set_state(BuyFlow.country)
        await state.update_data(service=service)
        await message.answer(
            texts.choose_country(merged.name(service), 0, total, None),
            reply_markup=keyboards.countries(service, isos, 0),
        )
        return
    if len(result.countries) == 1 and not result.services:
        country = result.countries[0]
        await state.set_state(SearchFlow.in_country)
        await state.update_data(country=country)
        text, markup = _country_services_screen(merged, country, 0)
        await message.answer(text, reply_markup=markup)
        return
    await state.set_state(None)
    await message.answer(
        texts.search_results(result.query),
        reply_markup=keyboards.search_results(
            result.services, _names(merged, result.services), result.countries
        ),
    )


async def search_anywhere(
    message: Message, state: FSMContext, catalog: CatalogService, i18n: I18n
) -> None:
    """Free text where no step waits for any: a search of services and countries."""
    await _search(message, state, catalog, i18n)


async def filter_in_country(
    message: Message, state: FSMContext, catalog: CatalogService, i18n: I18n
) -> None:
    """Typing on a country's services: those services matching; else a search anywhere (the
    user may have typed another country)."""
    country = (await state.get_data()).get("country")
    merged = await catalog.get()
    if isinstance(country, str) and country in merged.sold_countries():
        matches = merged.search_services(message.text, country)
        if matches:
            text, markup = _country_services_screen(
                merged, country, 0, matches[: keyboards.SERVICES_PER_PAGE], message.text
            )
            await message.answer(text, reply_markup=markup)
            return
    await _search(message, state, catalog, i18n)


async def country_services_page(
    query: CallbackQuery,
    callback_data: CountryServices,
    state: FSMContext,
    catalog: CatalogService,
) -> None:
    merged = await catalog.get()
    country = callback_data.country.upper()
    if country not in merged.sold_countries():  # a button the bot did not make, or sold out
        await answer(query, texts.not_yours(), alert=True)
        return
    await answer(query)
    await state.set_state(SearchFlow.in_country)
    await state.update_data(country=country)
    text, markup = _country_services_screen(merged, country, callback_data.page)
    await show(query, text, markup)


async def search_button(query: CallbackQuery, state: FSMContext) -> None:
    """Search again: ask for a name; the next text is searched (no step waits for it)."""
    await state.set_state(None)
    await answer(query)
    await show(query, texts.search_prompt(), keyboards.back_to_menu())


def setup() -> Router:
    """Include it after every router with a step that waits for text, before ``errors``."""
    router = Router(name="search")
    text = (F.text, ~F.text.startswith("/"))
    router.message.register(filter_in_country, SearchFlow.in_country, *text)
    router.message.register(search_anywhere, StateFilter(None), *text)
    router.callback_query.register(country_services_page, CountryServices.filter())
    router.callback_query.register(search_button, Menu.filter(F.action == MenuAction.SEARCH))
    return router
