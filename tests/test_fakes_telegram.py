"""The fake Bot API and BotClient, driven through a real aiogram Dispatcher and Bot."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, NoReturn

import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.filters.callback_data import CallbackData
from aiogram.methods import (
    AnswerPreCheckoutQuery,
    SendMessage,
)
from aiogram.types import (
    BotCommand,
    CallbackQuery,
    CopyTextButton,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
    PreCheckoutQuery,
)
from aiogram.utils.keyboard import InlineKeyboardBuilder, ReplyKeyboardBuilder

from tests.emulators.base import FakeClock
from tests.fakes.telegram import BotClient, FakeBotApi, make_bot, parse_html


class Pick(CallbackData, prefix="pick"):
    item: str


def build_dispatcher() -> Dispatcher:
    """A tiny bot: a menu of fruits, per-user notes, a reply keyboard and an invoice."""
    router = Router()
    notes: dict[int, str] = {}

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        kb = InlineKeyboardBuilder()
        kb.button(text="Apple", callback_data=Pick(item="apple"))
        kb.button(text="Pear", callback_data=Pick(item="pear"))
        kb.button(text="Docs", url="https://example.org/docs")
        kb.button(text="Copy code", copy_text=CopyTextButton(text="X-42"))
        kb.adjust(2)
        await message.answer("<b>Pick</b> a fruit &amp; enjoy", reply_markup=kb.as_markup())

    @router.callback_query(Pick.filter())
    async def picked(query: CallbackQuery, callback_data: Pick) -> None:
        assert isinstance(query.message, Message)
        await query.message.edit_text(f"You picked <i>{callback_data.item}</i>")
        await query.answer(f"Got {callback_data.item}")

    @router.message(Command("note"))
    async def note(message: Message, command: CommandObject) -> None:
        assert message.from_user is not None
        notes[message.from_user.id] = command.args or ""
        await message.answer("Saved")

    @router.message(Command("show"))
    async def show(message: Message) -> None:
        assert message.from_user is not None
        await message.answer(f"Your note: {notes.get(message.from_user.id, 'none')}")

    @router.message(Command("raw"))  # the classic bug: user text unescaped in HTML mode
    async def raw(message: Message, command: CommandObject) -> None:
        await message.answer(f"You said: {command.args}")

    @router.message(Command("menu"))
    async def menu(message: Message) -> None:
        kb = ReplyKeyboardBuilder()
        kb.button(text="Balance")
        kb.button(text="Help")
        await message.answer("Menu", reply_markup=kb.as_markup(resize_keyboard=True))

    @router.message(F.text == "Balance")
    async def balance(message: Message) -> SendMessage:
        return message.answer("Balance: 0")  # returned, not awaited: polling executes it

    @router.message(Command("buy"))
    async def buy(message: Message, command: CommandObject) -> None:
        await message.answer_invoice(
            title="Number",
            description="A US number for Telegram",
            payload=f"order-{command.args}",
            currency="XTR",
            prices=[LabeledPrice(label="Number", amount=25)],
        )

    @router.pre_checkout_query()
    async def checkout(query: PreCheckoutQuery) -> None:
        ok = query.invoice_payload != "order-0"
        await query.answer(ok=ok, error_message=None if ok else "Out of stock")

    @router.message(F.successful_payment)
    async def paid(message: Message) -> None:
        payment = message.successful_payment
        assert payment is not None
        text = f"Paid {payment.total_amount} {payment.currency} for {payment.invoice_payload}"
        await message.answer(text)

    dp = Dispatcher()
    dp.include_router(router)
    return dp


@pytest.fixture
def api(clock: FakeClock) -> FakeBotApi:
    return FakeBotApi(clock=clock)


@pytest.fixture
def bot(api: FakeBotApi) -> Bot:
    return make_bot(api)


@pytest.fixture
def dp() -> Dispatcher:
    return build_dispatcher()


@pytest.fixture
def alice(dp: Dispatcher, bot: Bot) -> BotClient:
    return BotClient(dp, bot, user_id=111, first_name="Alice")


@pytest.fixture
def bob(dp: Dispatcher, bot: Bot) -> BotClient:
    return BotClient(dp, bot, user_id=222, first_name="Bob", language_code="ru")


async def test_send_click_round_trip(alice: BotClient, clock: FakeClock) -> None:
    sent = await alice.send("/start")
    menu = alice.last_message()
    assert menu.text == "Pick a fruit & enjoy"  # what the user reads
    assert menu.html_text == "<b>Pick</b> a fruit &amp; enjoy"
    assert menu.message_id == sent.message_id + 1  # one id sequence per chat
    assert menu.date == clock.now()
    assert menu.from_user is not None and menu.from_user.is_bot
    assert alice.buttons(menu) == ["Apple", "Pear", "Docs", "Copy code"]

    answer = await alice.click(menu, "Pear")

    assert answer is not None and answer.text == "Got pear"
    assert alice.answers() == ["Got pear"]
    edited = alice.last_message()
    assert (edited.message_id, edited.text, edited.html_text) == (
        menu.message_id,
        "You picked pear",
        "You picked <i>pear</i>",
    )
    assert [type(m).__name__ for m in alice.calls()] == [
        "SendMessage",
        "EditMessageText",
        "AnswerCallbackQuery",
    ]
    wire = alice.api.calls(SendMessage)[0].params
    assert wire["parse_mode"] == "HTML"  # the bot's default, resolved as for the wire
    assert '"callback_data": "pick:apple"' in wire["reply_markup"]


async def test_edit_replaces_the_screen(alice: BotClient) -> None:
    await alice.send("/start")
    menu = alice.last_message()
    await alice.click(menu, lambda b: b.text.startswith("App"))

    assert len(alice.messages()) == 1
    assert alice.last_message().reply_markup is None  # edit without markup drops the keyboard
    assert alice.buttons() == []
    # The test's stale `menu` still has buttons; the user sees the edited message.
    with pytest.raises(AssertionError, match=r"no button matching 'Pear'.*buttons: \[\]"):
        await alice.click(menu, "Pear")


async def test_click_on_a_missing_button_lists_the_buttons(alice: BotClient) -> None:
    await alice.send("/start")
    with pytest.raises(AssertionError) as raised:
        await alice.click(alice.last_message().message_id, "Plum")
    assert "no button matching 'Plum'" in str(raised.value)
    assert "['Apple', 'Pear', 'Docs', 'Copy code']" in str(raised.value)
    with pytest.raises(AssertionError, match="4 buttons matching"):
        await alice.click(alice.last_message(), lambda b: True)


async def test_url_and_copy_text_buttons_send_nothing(alice: BotClient) -> None:
    await alice.send("/start")
    alice.reset()
    assert alice.copy_texts() == ["X-42"]
    with pytest.raises(AssertionError, match=r"'Copy code' .* is a copy_text button"):
        await alice.click(alice.last_message(), "Copy code")
    with pytest.raises(AssertionError, match=r"'Docs' .* is a url button"):
        await alice.click(alice.last_message(), "Docs")
    assert alice.calls() == []


async def test_a_callback_query_is_answered_once(alice: BotClient, bot: Bot) -> None:
    await alice.send("/start")
    answer = await alice.click(alice.last_message(), "Apple")
    assert answer is not None
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(answer.callback_query_id, text="again")
    assert alice.answers() == ["Got apple"]  # the refused second answer is not one


async def test_two_users_are_isolated(alice: BotClient, bob: BotClient) -> None:
    await alice.send("/note apple")
    await bob.send("/note pear")
    await alice.send("/show")
    await bob.send("/show")
    assert alice.last_message().text == "Your note: apple"
    assert bob.last_message().text == "Your note: pear"
    assert [m.chat_id for m in alice.calls(SendMessage)] == [111, 111]
    assert [m.text for m in bob.calls(SendMessage)] == ["Saved", "Your note: pear"]

    await alice.send("/start")
    alices_menu = alice.last_message()
    with pytest.raises(AssertionError, match="not on the screen of chat 222"):
        await bob.click(alices_menu, "Apple")
    with pytest.raises(AssertionError, match="not on the screen of chat 222"):
        await bob.click_data(alices_menu.message_id, Pick(item="apple").pack())
    assert bob.answers() == []
    assert alices_menu.message_id in {m.message_id for m in alice.messages()}


async def test_forged_callback_data_reaches_the_bot(bob: BotClient) -> None:
    await bob.send("/start")
    answer = await bob.click_data(bob.last_message(), Pick(item="plum").pack())
    assert answer is not None and answer.text == "Got plum"
    with pytest.raises(AssertionError, match="no handler took the callback 'junk'"):
        await bob.click_data(bob.last_message(), "junk")


async def test_retry_after_surfaces_as_aiogram_error(alice: BotClient, api: FakeBotApi) -> None:
    api.retry_after_next(SendMessage, 7)
    with pytest.raises(TelegramRetryAfter) as raised:
        await alice.send("/start")
    assert raised.value.retry_after == 7
    [failed] = api.calls("sendMessage")
    assert isinstance(failed.error, TelegramRetryAfter)
    assert alice.api.screen(alice.chat.id) == []

    await alice.send("/start")  # only the next call failed
    assert alice.last_message().text == "Pick a fruit & enjoy"
    assert len(alice.calls(SendMessage)) == 2  # attempts, the failed one included


async def test_forbidden_surfaces_as_aiogram_error(
    alice: BotClient, bob: BotClient, api: FakeBotApi, bot: Bot
) -> None:
    api.forbid_next("sendMessage")
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(alice.chat.id, "hello")
    await bot.send_message(alice.chat.id, "hello")

    api.block(bob.chat.id)
    for _ in range(2):
        with pytest.raises(TelegramForbiddenError):
            await bob.send("/show")
    api.unblock(bob.chat.id)
    await bob.send("/show")
    assert bob.last_message().text == "Your note: none"


async def test_a_chat_the_bot_never_met_is_not_found(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(999, "hello")


async def test_unescaped_html_is_rejected_like_telegram(alice: BotClient) -> None:
    with pytest.raises(TelegramBadRequest, match=r"can't parse entities: Unsupported start tag"):
        await alice.send("/raw 1 < 2")
    await alice.send("/raw 1 &lt; 2")
    assert alice.last_message().text == "You said: 1 < 2"


@pytest.mark.parametrize(
    ("source", "text", "entities"),
    [
        ("<b>bold</b> &lt;x&gt; & co", "bold <x> & co", [("bold", 0, 4)]),
        ("😀 <i>hi</i>", "😀 hi", [("italic", 3, 2)]),  # offsets in UTF-16 code units
        ("<b>a<u>b</u></b>", "ab", [("bold", 0, 2), ("underline", 1, 1)]),
        ('<a href="https://e.org/?a=1&amp;b=2">l</a>', "l", [("text_link", 0, 1)]),
        ('<span class="tg-spoiler">s</span>', "s", [("spoiler", 0, 1)]),
        ('<pre><code class="language-py">x</code></pre>', "x", [("pre", 0, 1)]),
    ],
)
def test_parse_html(source: str, text: str, entities: list[tuple[str, int, int]]) -> None:
    rendered, found = parse_html(source)
    assert rendered == text
    assert [(e.type, e.offset, e.length) for e in found] == entities
    if found and found[0].type == "text_link":
        assert found[0].url == "https://e.org/?a=1&b=2"
    if found and found[0].type == "pre":
        assert found[0].language == "py"


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("<p>x</p>", 'Unsupported start tag "p" at byte offset 0'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b>x</i>", 'Unmatched end tag "</i>", expected "</b>" at byte offset 4'),
        ("ü <b", "Unclosed start tag at byte offset 3"),
        ("<b>x</b", "Unclosed end tag at byte offset 4"),
        ('<a href="x"', "Unclosed start tag at byte offset 0"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
    ],
)
def test_parse_html_rejects(source: str, error: str) -> None:
    with pytest.raises(ValueError, match="^" + error.replace("(", r"\(")):
        parse_html(source)


async def test_edits_and_deletes_follow_telegram(alice: BotClient, bot: Bot) -> None:
    await alice.send("/start")
    await alice.click(alice.last_message(), "Pear")
    shown = alice.last_message()
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "You picked <i>pear</i>", chat_id=111, message_id=shown.message_id
        )
    edited = await bot.edit_message_text(
        "You picked <b>pear</b>", chat_id=111, message_id=shown.message_id
    )
    assert isinstance(edited, Message) and edited.edit_date is not None
    assert alice.last_message().html_text == "You picked <b>pear</b>"
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=111, message_id=shown.message_id + 50)

    assert await bot.delete_message(111, shown.message_id) is True
    assert alice.messages() == []
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(111, shown.message_id)


async def test_edit_reply_markup_updates_the_buttons(alice: BotClient, bot: Bot) -> None:
    await alice.send("/start")
    menu = alice.last_message()
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Back", callback_data="back")]]
    )
    result = await bot.edit_message_reply_markup(
        chat_id=111, message_id=menu.message_id, reply_markup=markup
    )
    assert isinstance(result, Message) and result.text == menu.text
    assert alice.buttons(menu) == ["Back"]
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(
            chat_id=111, message_id=menu.message_id, reply_markup=markup
        )


@pytest.mark.parametrize(
    ("text", "button", "error"),
    [
        ("hi", InlineKeyboardButton(text="x"), "Text buttons are unallowed"),
        ("hi", InlineKeyboardButton(text="x", callback_data="d" * 65), "BUTTON_DATA_INVALID"),
        ("<b> </b>", None, "message text is empty"),
        ("й" * 4097, None, "message is too long"),
    ],
)
async def test_bad_messages_are_rejected(
    alice: BotClient, bot: Bot, text: str, button: InlineKeyboardButton | None, error: str
) -> None:
    markup = InlineKeyboardMarkup(inline_keyboard=[[button]]) if button else None
    with pytest.raises(TelegramBadRequest, match=error):
        await bot.send_message(alice.chat.id, text, reply_markup=markup)
    assert alice.messages() == []


async def test_reply_keyboard_and_returned_methods(alice: BotClient) -> None:
    await alice.send("/menu")
    assert alice.keyboard() == ["Balance", "Help"]
    assert alice.last_message().reply_markup is None  # reply keyboards are not on the message
    await alice.press("Balance")
    assert alice.last_message().text == "Balance: 0"
    with pytest.raises(AssertionError, match=r"no reply-keyboard button 'Top up'"):
        await alice.press("Top up")


async def test_an_update_nobody_handles_fails_the_step(alice: BotClient) -> None:
    with pytest.raises(AssertionError, match="no handler took the message 'hello' from user 111"):
        await alice.send("hello")
    await alice.send("hello", allow_unhandled=True)
    assert alice.calls() == []


async def test_pay_an_invoice(alice: BotClient) -> None:
    await alice.send("/buy 7")
    invoice = alice.last_message()
    assert invoice.invoice is not None
    assert (invoice.invoice.currency, invoice.invoice.total_amount) == ("XTR", 25)

    assert await alice.pay(invoice) is True
    assert alice.last_message().text == "Paid 25 XTR for order-7"
    [checkout] = alice.calls(AnswerPreCheckoutQuery)
    assert checkout.ok is True

    await alice.send("/buy 0")
    assert await alice.pay(alice.last_message()) is False
    assert alice.calls(AnswerPreCheckoutQuery)[-1].error_message == "Out of stock"
    assert alice.last_message().invoice is not None  # no payment message followed
    await alice.send("/show")
    with pytest.raises(AssertionError, match="is not an invoice"):
        await alice.pay(alice.last_message())


async def test_reset_forgets_calls_not_the_screen(alice: BotClient) -> None:
    await alice.send("/start")
    await alice.click(alice.last_message(), "Apple")
    alice.reset()
    assert alice.calls() == [] and alice.answers() == []
    assert alice.last_message().text == "You picked apple"
    await alice.send("/show")
    assert [type(m) for m in alice.calls()] == [SendMessage]


async def test_other_methods(api: FakeBotApi, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456789, True, "numbers_test_bot")
    assert await bot.set_my_commands([BotCommand(command="start", description="Start")])
    with pytest.raises(NotImplementedError, match="does not emulate getMyCommands"):
        await bot.get_my_commands()
    api.on("getMyCommands", lambda _: [BotCommand(command="start", description="Start")])
    assert [c.command for c in await bot.get_my_commands()] == ["start"]
    assert [c.name for c in api.calls()] == [
        "getMe",
        "setMyCommands",
        "getMyCommands",  # the unanswered call is not an API call: it raised in the fake
    ]


def _refuse(*args: Any, **kwargs: Any) -> NoReturn:
    raise AssertionError("the fake Bot API touched the network")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", _refuse)


async def test_no_network_is_touched(no_network: None, alice: BotClient, bot: Bot) -> None:
    with pytest.raises(AssertionError, match="touched the network"):  # the guard works
        await asyncio.get_running_loop().create_connection(asyncio.Protocol, "127.0.0.1", 9)
    await alice.send("/start")
    await alice.click(alice.last_message(), "Apple")
    await bot.get_me()
    with pytest.raises(NotImplementedError, match="serves no files"):
        await bot.download_file("photos/file_1.jpg")
    await bot.session.close()
    assert isinstance(bot.session, FakeBotApi) and bot.session.closed


def test_client_needs_a_fake_session(dp: Dispatcher) -> None:
    with pytest.raises(TypeError, match="FakeBotApi"):
        BotClient(dp, Bot(token="1:x"))
