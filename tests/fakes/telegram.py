"""A fake Telegram Bot API under a real aiogram ``Bot``, and a user-side client for story tests.

``FakeBotApi`` is an aiogram session (``BaseSession``), so the real ``Bot`` builds every method
and serialises it as for the wire, and the answer goes back through aiogram's own
``check_response``: results are real typed objects bound to the bot, and errors are aiogram's
real exceptions (``TelegramRetryAfter``, ``TelegramForbiddenError``, ``TelegramBadRequest``...).
It never opens a socket. It behaves like Telegram where bots commonly get it wrong:

* message ids grow per chat (user and bot messages share the sequence); a chat the bot never
  met is ``chat not found`` (400); a blocked chat is ``bot was blocked by the user`` (403);
* text is rendered as Telegram renders it: in HTML mode the tags become entities (so
  ``message.text`` is what the user reads and ``message.html_text`` gives the markup back), and
  markup Telegram rejects (a bare ``<``, an unknown or unclosed tag) is ``can't parse entities``;
  an empty or too long text and an inline button without an action or with more than 64 bytes
  of callback data are rejected too; Markdown modes are not emulated (``NotImplementedError``);
* ``editMessageText`` without ``reply_markup`` removes the inline keyboard; an edit that changes
  nothing is ``message is not modified``; editing or deleting an unknown message is a 400;
* a callback or pre-checkout query can be answered once; ``sendDocument`` keeps the uploaded
  bytes in the call's ``files``; ``setMyCommands`` for the chat scope of a chat the bot never met
  is ``chat not found``;
* the bot's description and short description are kept per ``language_code`` (``None``: the
  default) as ``descriptions`` and ``short_descriptions``, an empty one removes that
  language's, a longer one than the Bot API allows is a 400; ``getMy*`` read them back.

It keeps a per-chat *screen*: the latest version of each message the bot sent, so a test clicks
what the user sees. Control methods: ``add_chat``, ``block``/``unblock``, ``fail_next`` (and
``retry_after_next``, ``forbid_next``) to fail the next call(s) of one method, ``on`` to answer a
method the fake does not emulate, ``latency`` (seconds per call, for benchmarks). Methods that
return ``bool`` get ``True``; others without a responder raise ``NotImplementedError``.

``BotClient`` is one user in a private chat: ``send``, ``click``, ``click_data`` (a forged
callback, as a modified client can send), ``press`` (reply keyboard), ``pay`` (invoice), and the
helpers ``last_message``, ``messages``, ``buttons``, ``copy_texts``, ``keyboard``, ``calls``,
``answers``, ``reset``. Updates go through the real ``Dispatcher.feed_update``; a handler's
exception reaches the test, and an update no handler takes fails the step (``allow_unhandled``).
"""

from __future__ import annotations

import asyncio
import html
import itertools
import logging
import re
from collections import defaultdict, deque
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn, TypeVar, cast, overload

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.base import BaseSession
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.enums import ParseMode
from aiogram.exceptions import ClientDecodeError, TelegramAPIError
from aiogram.methods import (
    AnswerCallbackQuery,
    AnswerPreCheckoutQuery,
    DeleteMessage,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    GetMyDescription,
    GetMyShortDescription,
    SendDocument,
    SendInvoice,
    SendMessage,
    SetMyCommands,
    SetMyDescription,
    SetMyShortDescription,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import (
    BotCommandScopeChat,
    BotDescription,
    BotShortDescription,
    CallbackQuery,
    Chat,
    Document,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Invoice,
    Message,
    MessageEntity,
    PreCheckoutQuery,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    SuccessfulPayment,
    TelegramObject,
    Update,
    User,
)

from bot.clock import SYSTEM_CLOCK, Clock

logger = logging.getLogger(__name__)

TOKEN: Final = "123456789:FAKE-token-for-tests-never-sent"
MAX_TEXT: Final = 4096
MAX_CALLBACK_DATA: Final = 64
MAX_DESCRIPTION: Final = 512  # setMyDescription: 0-512 characters
MAX_SHORT_DESCRIPTION: Final = 120  # setMyShortDescription: 0-120 characters
NOT_MODIFIED: Final = (
    "Bad Request: message is not modified: specified new message content and reply markup are"
    " exactly the same as a content and reply markup of the current content and reply markup of"
    " the message"
)
QUERY_INVALID: Final = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)
BLOCKED: Final = "Forbidden: bot was blocked by the user"
_BUTTON_ACTIONS: Final = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)

M = TypeVar("M", bound=TelegramMethod[Any])
Responder = Callable[[TelegramMethod[Any]], object]
ButtonLocator = str | Callable[[InlineKeyboardButton], bool]


def make_bot(api: FakeBotApi | None = None, *, token: str = TOKEN) -> Bot:
    """A real ``Bot`` on a ``FakeBotApi`` session, with the bot's default ``parse_mode=HTML``."""
    return Bot(
        token=token,
        session=api or FakeBotApi(),
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )


class ApiError(Exception):
    """What Telegram answers instead of a result; aiogram turns it into its own exception."""

    def __init__(
        self,
        status: int,
        description: str,
        *,
        retry_after: int | None = None,
        raw: str | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after
        self.raw = raw  # a body that is not the Bot API's JSON (a proxy's HTML error page)

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


@dataclass(frozen=True)
class ApiCall:
    """One request the bot made, in order. ``params`` is the wire form (defaults resolved)."""

    name: str
    method: TelegramMethod[Any]
    params: dict[str, Any]
    chat_id: int | str | None
    error: TelegramAPIError | ClientDecodeError | None = None
    files: dict[str, tuple[str | None, bytes]] = field(default_factory=dict)  # name, content


@dataclass
class _Query:
    chat_id: int
    answer: AnswerCallbackQuery | AnswerPreCheckoutQuery | None = None


def _method_name(method: str | type[TelegramMethod[Any]]) -> str:
    return method if isinstance(method, str) else method.__api_method__


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# --- Telegram's HTML parse mode --------------------------------------------------------------

_TAG_ENTITY: Final = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_CHAR_REF: Final = re.compile(r"&(?:#[0-9]{1,7}|#x[0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_ATTR: Final = re.compile(r"""([a-zA-Z-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")


def parse_html(source: str) -> tuple[str, list[MessageEntity]]:
    """Render ``source`` as Telegram's HTML mode does (after tdlib): the visible text and its
    entities (UTF-16 offsets). ``ValueError`` in Telegram's words for markup it rejects.
    """
    out: list[str] = []
    size = 0
    stack: list[tuple[str, int, dict[str, str]]] = []
    entities: list[MessageEntity] = []
    i = 0

    def fail(why: str, at: int) -> NoReturn:
        raise ValueError(f"{why} at byte offset {len(source[:at].encode())}")

    while i < len(source):
        if source[i] == "<":  # tdlib: the tag name runs to a space or ">"
            start_at, closing = i, source.startswith("</", i)
            name_end = i + 1 + closing
            while name_end < len(source) and source[name_end] not in " \t\n\r>":
                name_end += 1
            end = source.find(">", name_end)
            if name_end == len(source) or (closing and end < 0):
                fail("Unclosed end tag" if closing else "Unclosed start tag", start_at)
            name = source[i + 1 + closing : name_end].lower()
            if closing:
                if not stack:
                    fail("Unexpected end tag", start_at)
                opened, offset, attrs = stack.pop()
                if name != opened:
                    fail(f'Unmatched end tag "</{name}>", expected "</{opened}>"', start_at)
                parent = stack[-1] if stack else None
                entity = _entity(opened, offset, size - offset, attrs, parent)
                if entity is not None:
                    entities.append(entity)
                i = end + 1
                continue
            if name not in _TAG_ENTITY:
                fail(f'Unsupported start tag "{name}"', start_at)
            if end < 0:
                fail("Unclosed start tag", start_at)
            attrs = {
                m[1].lower(): html.unescape(next((g for g in m.groups()[1:] if g), ""))
                for m in _ATTR.finditer(source, name_end, end)
            }
            i = end + 1
            if name == "span" and attrs.get("class") != "tg-spoiler":
                fail('Tag "span" must have class "tg-spoiler"', start_at)
            stack.append((name, size, attrs))
            continue
        ref = _CHAR_REF.match(source, i) if source[i] == "&" else None
        chunk = html.unescape(ref[0]) if ref else source[i]
        i = ref.end() if ref else i + 1
        out.append(chunk)
        size += _utf16_len(chunk)
    if stack:
        raise ValueError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e.offset, -e.length))
    return "".join(out), entities


def _entity(
    tag: str,
    offset: int,
    length: int,
    attrs: dict[str, str],
    parent: tuple[str, int, dict[str, str]] | None,
) -> MessageEntity | None:
    language = attrs.get("class", "").removeprefix("language-")
    if tag == "code" and parent is not None and parent[0] == "pre" and language:
        parent[2]["language"] = language  # <pre><code class="language-x"> is one pre entity
        return None
    if length == 0 or (tag == "a" and not attrs.get("href")):
        return None
    kind = _TAG_ENTITY[tag]
    if tag == "blockquote" and "expandable" in attrs:
        kind = "expandable_blockquote"
    return MessageEntity(
        type=kind,
        offset=offset,
        length=length,
        url=attrs.get("href") if tag == "a" else None,
        language=attrs.get("language") if tag == "pre" else None,
        custom_emoji_id=attrs.get("emoji-id") if tag == "tg-emoji" else None,
    )


# --- the fake Bot API -------------------------------------------------------------------------


class FakeBotApi(BaseSession):
    """The Bot API as a recording, answering aiogram session (see the module docstring)."""

    def __init__(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        bot_first_name: str = "Numbers Bot",
        bot_username: str = "numbers_test_bot",
    ) -> None:
        super().__init__()
        self.clock = clock
        self.bot_first_name = bot_first_name
        self.bot_username = bot_username
        self.latency = 0.0
        self.closed = True
        self.log: list[ApiCall] = []
        self._chats: dict[int | str, Chat] = {}
        self._blocked: set[int | str] = set()
        self._screens: dict[int, dict[int, Message]] = defaultdict(dict)
        self._reply_keyboards: dict[int, ReplyKeyboardMarkup] = {}
        self._invoices: dict[tuple[int, int], SendInvoice] = {}
        self._queries: dict[str, _Query] = {}
        self._failures: dict[str, deque[ApiError]] = defaultdict(deque)
        self._responders: dict[str, Responder] = {}
        self._message_ids: dict[int, Iterator[int]] = defaultdict(lambda: itertools.count(1))
        self._update_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self.descriptions: dict[str | None, str] = {}
        self.short_descriptions: dict[str | None, str] = {}

    # control ------------------------------------------------------------------------------

    def add_chat(self, chat: Chat) -> None:
        """Make a chat known (its user pressed Start); other chats are ``chat not found``."""
        self._chats[chat.id] = chat

    def block(self, chat_id: int) -> None:
        """The user blocks the bot: every later call to the chat is a 403 until ``unblock``."""
        self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    def fail_next(
        self,
        method: str | type[TelegramMethod[Any]],
        status: int,
        description: str,
        *,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` calls of ``method`` get this error answer instead of a result."""
        error = ApiError(status, description, retry_after=retry_after)
        self._failures[_method_name(method)].extend([error] * times)

    def retry_after_next(
        self, method: str | type[TelegramMethod[Any]], seconds: int, *, times: int = 1
    ) -> None:
        """Flood control: 429 with ``parameters.retry_after`` -> ``TelegramRetryAfter``."""
        text = f"Too Many Requests: retry after {seconds}"
        self.fail_next(method, 429, text, retry_after=seconds, times=times)

    def fail_next_raw(
        self, method: str | type[TelegramMethod[Any]], status: int, body: str, *, times: int = 1
    ) -> None:
        """The next ``times`` calls get ``body`` as it is (an HTML 502 page from a proxy):
        aiogram raises ``ClientDecodeError``, as with the real Bot API behind a failing proxy."""
        error = ApiError(status, "not JSON", raw=body)
        self._failures[_method_name(method)].extend([error] * times)

    def forbid_next(self, method: str | type[TelegramMethod[Any]], *, times: int = 1) -> None:
        """403 ``bot was blocked by the user`` -> ``TelegramForbiddenError``."""
        self.fail_next(method, 403, BLOCKED, times=times)

    def on(self, method: str | type[TelegramMethod[Any]], responder: Responder) -> None:
        """Answer ``method`` with ``responder(method_object)`` (a TelegramObject or JSON)."""
        self._responders[_method_name(method)] = responder

    # what the user sees ---------------------------------------------------------------------

    def screen(self, chat_id: int) -> list[Message]:
        """The bot's messages in the chat as they look now, least recently touched first."""
        return list(self._screens[chat_id].values())

    def message(self, chat_id: int, message_id: int) -> Message | None:
        return self._screens[chat_id].get(message_id)

    def reply_keyboard(self, chat_id: int) -> ReplyKeyboardMarkup | None:
        return self._reply_keyboards.get(chat_id)

    def invoice(self, chat_id: int, message_id: int) -> SendInvoice | None:
        return self._invoices.get((chat_id, message_id))

    def calls(self, method: str | type[TelegramMethod[Any]] | None = None) -> list[ApiCall]:
        name = None if method is None else _method_name(method)
        return [call for call in self.log if name is None or call.name == name]

    # ids shared with the clients --------------------------------------------------------------

    def next_update_id(self) -> int:
        return next(self._update_ids)

    def next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids[chat_id])

    def open_query(self, chat_id: int) -> str:
        """A new callback/pre-checkout query id that the bot may answer once."""
        query_id = f"{next(self._query_ids)}{chat_id}".replace("-", "")
        self._queries[query_id] = _Query(chat_id)
        return query_id

    def query_answer(self, query_id: str) -> AnswerCallbackQuery | AnswerPreCheckoutQuery | None:
        return self._queries[query_id].answer

    def me(self, bot: Bot) -> User:
        return User(
            id=bot.id,
            is_bot=True,
            first_name=self.bot_first_name,
            username=self.bot_username,
            can_join_groups=True,
            can_read_all_group_messages=False,
            supports_inline_queries=False,
        )

    # BaseSession ---------------------------------------------------------------------------

    async def close(self) -> None:
        self.closed = True

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,  # noqa: ASYNC109 - the signature of BaseSession
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield _refuse_download(url)

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 - the signature of BaseSession
    ) -> TelegramType:
        self.closed = False
        await asyncio.sleep(self.latency)  # a suspension point like a real round trip
        name = method.__api_method__
        files: dict[str, InputFile] = {}
        params = {
            key: wire
            for key, value in method.model_dump(warnings=False).items()
            if (wire := self.prepare_value(value, bot=bot, files=files))
        }
        chat_id = self._target(params)
        raw: str | None = None
        uploads: dict[str, tuple[str | None, bytes]] = {}
        for key, file in files.items():  # read as aiohttp would stream it
            uploads[key] = (file.filename, b"".join([chunk async for chunk in file.read(bot)]))
        try:
            status, body = 200, {"ok": True, "result": self._answer(bot, name, method, chat_id)}
        except ApiError as error:
            status, body, raw = error.status, error.payload(), error.raw
        try:
            response = self.check_response(
                bot=bot,
                method=method,
                status_code=status,
                content=self.json_dumps(body) if raw is None else raw,
            )
        except (TelegramAPIError, ClientDecodeError) as error:
            logger.debug("fake Bot API: %s -> %s", name, error)
            self.log.append(ApiCall(name, method, params, chat_id, error, uploads))
            raise
        self.log.append(ApiCall(name, method, params, chat_id, files=uploads))
        result = response.result
        if isinstance(result, Message):
            screen = self._screens[result.chat.id]
            screen.pop(result.message_id, None)
            screen[result.message_id] = result
        return cast(TelegramType, result)

    # answering -------------------------------------------------------------------------------

    def _target(self, params: dict[str, Any]) -> int | str | None:
        query_id = params.get("callback_query_id") or params.get("pre_checkout_query_id")
        if query_id is not None:
            query = self._queries.get(str(query_id))
            return query.chat_id if query else None
        target = params.get("chat_id", params.get("user_id"))
        if target is None:
            return None
        text = str(target)
        return int(text) if text.lstrip("-").isdigit() else text

    def _answer(
        self, bot: Bot, name: str, method: TelegramMethod[Any], chat_id: int | str | None
    ) -> object:
        if self._failures[name]:
            raise self._failures[name].popleft()
        queried = isinstance(method, AnswerCallbackQuery | AnswerPreCheckoutQuery)
        if chat_id is not None and not queried:
            if chat_id in self._blocked:
                raise ApiError(403, BLOCKED)
            if chat_id not in self._chats:
                raise ApiError(400, "Bad Request: chat not found")
        if responder := self._responders.get(name):
            result = responder(method)
            return _json(result)
        if isinstance(method, GetMe):
            return _json(self.me(bot))
        if isinstance(method, SetMyDescription | SetMyShortDescription):
            return self._describe(method)
        if isinstance(method, GetMyDescription):
            text = self.descriptions.get(method.language_code, "")
            return _json(BotDescription(description=text))
        if isinstance(method, GetMyShortDescription):
            text = self.short_descriptions.get(method.language_code, "")
            return _json(BotShortDescription(short_description=text))
        scope = method.scope if isinstance(method, SetMyCommands) else None
        if isinstance(scope, BotCommandScopeChat) and scope.chat_id not in self._chats:
            raise ApiError(400, "Bad Request: chat not found")  # a chat the bot never met
        if isinstance(method, SendDocument):
            return _json(self._send_document(bot, method, cast(int, chat_id)))
        if isinstance(method, SendMessage | SendInvoice):
            return _json(self._send(bot, method, cast(int, chat_id)))
        if isinstance(method, EditMessageText | EditMessageReplyMarkup):
            return _json(self._edit(bot, method))
        if isinstance(method, DeleteMessage):
            if self._screens[cast(int, chat_id)].pop(method.message_id, None) is None:
                raise ApiError(400, "Bad Request: message to delete not found")
            return True
        if isinstance(method, AnswerCallbackQuery | AnswerPreCheckoutQuery):
            query_id = (
                method.callback_query_id
                if isinstance(method, AnswerCallbackQuery)
                else method.pre_checkout_query_id
            )
            query = self._queries.get(query_id)
            if query is None or query.answer is not None:
                raise ApiError(400, QUERY_INVALID)
            query.answer = method
            return True
        if method.__returning__ is bool:
            return True
        raise NotImplementedError(f"FakeBotApi does not emulate {name}; add FakeBotApi.on(...)")

    def _describe(self, method: SetMyDescription | SetMyShortDescription) -> bool:
        if isinstance(method, SetMyDescription):
            kept, text, limit = self.descriptions, method.description, MAX_DESCRIPTION
        else:
            kept, text, limit = (
                self.short_descriptions,
                method.short_description,
                MAX_SHORT_DESCRIPTION,
            )
        if len(text or "") > limit:
            raise ApiError(400, f"Bad Request: description is longer than {limit} characters")
        if text:
            kept[method.language_code] = text
        else:
            kept.pop(method.language_code, None)
        return True

    def _send_document(self, bot: Bot, method: SendDocument, chat_id: int) -> Message:
        """A document message (its content is in the call's ``files``)."""
        file = method.document
        name = file.filename if isinstance(file, InputFile) else None
        caption, entities = (
            self._render(bot, method.caption, method.parse_mode, method.caption_entities)
            if method.caption
            else (None, None)
        )
        message_id = self.next_message_id(chat_id)
        return Message(
            message_id=message_id,
            date=self.clock.now(),
            chat=self._chats[chat_id],
            from_user=self.me(bot),
            document=Document(
                file_id=f"doc-{chat_id}-{message_id}",
                file_unique_id=f"u-{chat_id}-{message_id}",
                file_name=name,
            ),
            caption=caption,
            caption_entities=entities,
            reply_markup=self._markup(method.reply_markup, chat_id),
        )

    def _send(self, bot: Bot, method: SendMessage | SendInvoice, chat_id: int) -> Message:
        markup = self._markup(method.reply_markup, chat_id)
        message_id = self.next_message_id(chat_id)
        common: dict[str, Any] = {
            "message_id": message_id,
            "date": self.clock.now(),
            "chat": self._chats[chat_id],
            "from_user": self.me(bot),
            "reply_markup": markup,
        }
        if isinstance(method, SendInvoice):
            self._invoices[(chat_id, message_id)] = method
            invoice = Invoice(
                title=method.title,
                description=method.description,
                start_parameter=method.start_parameter or "",
                currency=method.currency,
                total_amount=sum(price.amount for price in method.prices),
            )
            return Message(invoice=invoice, **common)
        text, entities = self._render(bot, method.text, method.parse_mode, method.entities)
        return Message(text=text, entities=entities, **common)

    def _edit(self, bot: Bot, method: EditMessageText | EditMessageReplyMarkup) -> Message | bool:
        if method.inline_message_id is not None:
            return True  # messages sent via inline mode are not tracked
        if method.chat_id is None or method.message_id is None:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        chat_id = cast(int, self._target({"chat_id": method.chat_id}))
        current = self._screens[chat_id].get(method.message_id)
        if current is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        markup = self._markup(method.reply_markup, chat_id)
        text, entities = current.text, current.entities
        if isinstance(method, EditMessageText):
            if current.text is None:
                raise ApiError(400, "Bad Request: there is no text in the message to edit")
            text, entities = self._render(bot, method.text, method.parse_mode, method.entities)
        before = [current.text, current.entities, current.reply_markup]
        if _json([text, entities, markup]) == _json(before):  # as Telegram compares: content
            raise ApiError(400, NOT_MODIFIED)
        return current.model_copy(
            update={
                "text": text,
                "entities": entities,
                "reply_markup": markup,
                "edit_date": int(self.clock.now().timestamp()),
            }
        )

    def _render(
        self, bot: Bot, text: str | None, parse_mode: object, entities: list[MessageEntity] | None
    ) -> tuple[str, list[MessageEntity] | None]:
        text = text or ""
        mode = self.prepare_value(parse_mode, bot=bot, files={})
        if mode == ParseMode.HTML:
            try:
                text, entities = parse_html(text)
            except ValueError as error:
                raise ApiError(400, f"Bad Request: can't parse entities: {error}") from None
        elif mode is not None:
            raise NotImplementedError(f"FakeBotApi renders parse_mode HTML only, not {mode}")
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if _utf16_len(text) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        return text, entities or None

    def _markup(self, markup: object, chat_id: int) -> InlineKeyboardMarkup | None:
        if isinstance(markup, ReplyKeyboardMarkup):
            self._reply_keyboards[chat_id] = markup
        elif isinstance(markup, ReplyKeyboardRemove):
            self._reply_keyboards.pop(chat_id, None)
        if not isinstance(markup, InlineKeyboardMarkup):
            return None  # reply keyboards, removals and ForceReply are not part of the message
        for button in (button for row in markup.inline_keyboard for button in row):
            if sum(getattr(button, action) is not None for action in _BUTTON_ACTIONS) != 1:
                raise ApiError(
                    400,
                    "Bad Request: can't parse inline keyboard button:"
                    " Text buttons are unallowed in the inline keyboard",
                )
            data = button.callback_data
            if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup


def _refuse_download(url: str) -> NoReturn:
    raise NotImplementedError("FakeBotApi serves no files")


def _json(value: object) -> object:
    """A result as Telegram puts it in the JSON answer."""
    if isinstance(value, TelegramObject):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, list):
        return [_json(item) for item in value]
    return value


# --- the user's side --------------------------------------------------------------------------


class BotClient:
    """One Telegram user talking to the bot in a private chat, through the real dispatcher.

    Several clients may share one ``dp``/``bot``/``FakeBotApi``; each sees only its own chat.
    """

    def __init__(
        self,
        dp: Dispatcher,
        bot: Bot,
        *,
        user_id: int = 1001,
        chat_id: int | None = None,
        language_code: str | None = "en",
        first_name: str | None = None,
        username: str | None = None,
    ) -> None:
        if not isinstance(bot.session, FakeBotApi):
            raise TypeError("BotClient needs a Bot on a FakeBotApi session (see make_bot)")
        self.dp = dp
        self.bot = bot
        self.api: FakeBotApi = bot.session
        self.user = User(
            id=user_id,
            is_bot=False,
            first_name=first_name or f"User{user_id}",
            username=username,
            language_code=language_code,
        )
        self.chat = Chat(
            id=user_id if chat_id is None else chat_id,
            type="private",
            first_name=self.user.first_name,
            username=username,
        )
        self.api.add_chat(self.chat)
        self._since = 0

    # acting --------------------------------------------------------------------------------

    async def send(self, text: str, *, allow_unhandled: bool = False) -> Message:
        """The user sends ``text`` (``/commands`` carry their bot_command entity)."""
        entities = None
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            entities = [MessageEntity(type="bot_command", offset=0, length=_utf16_len(command))]
        message = self._user_message(text=text, entities=entities)
        await self._feed(
            Update(update_id=0, message=message), f"message {text!r}", allow_unhandled
        )
        return message

    async def press(self, text: str, *, allow_unhandled: bool = False) -> Message:
        """Press a reply-keyboard button: Telegram sends its text as a message."""
        if text not in self.keyboard():
            raise AssertionError(f"no reply-keyboard button {text!r}; keyboard: {self.keyboard()}")
        return await self.send(text, allow_unhandled=allow_unhandled)

    async def click(
        self, message: Message | int, button: ButtonLocator, *, allow_unhandled: bool = False
    ) -> AnswerCallbackQuery | None:
        """Click an inline button (by exact text or predicate) on the message as it is now.

        Returns the bot's answerCallbackQuery for this click, or ``None`` if it gave none.
        """
        shown = self._shown(message)
        found = self._find(shown, button)
        if found.callback_data is None:
            kind = next(a for a in _BUTTON_ACTIONS if getattr(found, a) is not None)
            raise AssertionError(
                f"button {found.text!r} on message {shown.message_id} is a {kind} button: "
                "clicking it sends nothing to the bot"
            )
        return await self.click_data(shown, found.callback_data, allow_unhandled=allow_unhandled)

    async def click_data(
        self, message: Message | int, data: str, *, allow_unhandled: bool = False
    ) -> AnswerCallbackQuery | None:
        """A callback query with any ``data`` on one of this chat's messages, as a modified
        client can send (to test that a user cannot act on someone else's data).
        """
        shown = self._shown(message)
        query_id = self.api.open_query(self.chat.id)
        query = CallbackQuery(
            id=query_id,
            from_user=self.user,
            chat_instance=f"ci{self.chat.id}",
            message=shown,
            data=data,
        )
        update = Update(update_id=0, callback_query=query)
        await self._feed(update, f"callback {data!r}", allow_unhandled)
        answer = self.api.query_answer(query_id)
        return answer if isinstance(answer, AnswerCallbackQuery) else None

    async def pay(self, message: Message | int) -> bool:
        """Pay the invoice: a pre-checkout query, then (if the bot said ok) the payment message.

        Returns whether the payment went through.
        """
        shown = self._shown(message)
        invoice = self.api.invoice(self.chat.id, shown.message_id)
        if invoice is None:
            raise AssertionError(f"message {shown.message_id} is not an invoice")
        total = sum(price.amount for price in invoice.prices)
        query_id = self.api.open_query(self.chat.id)
        checkout = PreCheckoutQuery(
            id=query_id,
            from_user=self.user,
            currency=invoice.currency,
            total_amount=total,
            invoice_payload=invoice.payload,
        )
        await self._feed(Update(update_id=0, pre_checkout_query=checkout), "pre-checkout", False)
        answer = self.api.query_answer(query_id)
        if not isinstance(answer, AnswerPreCheckoutQuery) or not answer.ok:
            return False
        payment = SuccessfulPayment(
            currency=invoice.currency,
            total_amount=total,
            invoice_payload=invoice.payload,
            telegram_payment_charge_id=f"tg-charge-{query_id}",
            provider_payment_charge_id=f"provider-charge-{query_id}",
        )
        paid = self._user_message(successful_payment=payment)
        await self._feed(Update(update_id=0, message=paid), "successful payment", False)
        return True

    # looking ------------------------------------------------------------------------------

    def last_message(self) -> Message:
        """The bot's message in this chat that was sent or edited last."""
        screen = self.api.screen(self.chat.id)
        if not screen:
            raise AssertionError(f"the bot has shown nothing in chat {self.chat.id}")
        return screen[-1]

    def messages(self) -> list[Message]:
        """The bot's messages in this chat as they look now, oldest first."""
        return sorted(self.api.screen(self.chat.id), key=lambda m: m.message_id)

    def buttons(self, message: Message | int | None = None) -> list[str]:
        """Texts of the inline buttons (any kind) on the message, last message by default."""
        return [button.text for button in self._inline_buttons(self._shown(message))]

    def copy_texts(self, message: Message | int | None = None) -> list[str]:
        """What the copy-text buttons on the message copy."""
        buttons = self._inline_buttons(self._shown(message))
        return [b.copy_text.text for b in buttons if b.copy_text is not None]

    def keyboard(self) -> list[str]:
        """Texts of the reply keyboard the bot set in this chat (empty if none)."""
        markup = self.api.reply_keyboard(self.chat.id)
        return [b.text for row in markup.keyboard for b in row] if markup else []

    @overload
    def calls(self, method: type[M]) -> list[M]: ...
    @overload
    def calls(self, method: str | None = None) -> list[TelegramMethod[Any]]: ...
    def calls(self, method: type[TelegramMethod[Any]] | str | None = None) -> list[Any]:
        """API calls (failed attempts included) about this chat or no chat, since ``reset``."""
        return [
            call.method
            for call in self._calls()
            if method is None or call.name == _method_name(method)
        ]

    def answers(self) -> list[str | None]:
        """Texts of the bot's answers to this user's callback queries, since ``reset``."""
        return [
            call.method.text
            for call in self._calls()
            if isinstance(call.method, AnswerCallbackQuery) and call.error is None
        ]

    def reset(self) -> None:
        """Forget the calls so far (for ``calls``/``answers``); the screen stays."""
        self._since = len(self.api.log)

    # internals ---------------------------------------------------------------------------

    def _calls(self) -> list[ApiCall]:
        return [c for c in self.api.log[self._since :] if c.chat_id in (None, self.chat.id)]

    def _user_message(self, **content: Any) -> Message:
        return Message(
            message_id=self.api.next_message_id(self.chat.id),
            date=self.api.clock.now(),
            chat=self.chat,
            from_user=self.user,
            **content,
        )

    async def _feed(self, update: Update, what: str, allow_unhandled: bool) -> None:
        update = update.model_copy(update={"update_id": self.api.next_update_id()})
        result = await self.dp.feed_update(self.bot, update)
        if result is UNHANDLED and not allow_unhandled:
            raise AssertionError(f"no handler took the {what} from user {self.user.id}")
        if isinstance(result, TelegramMethod):
            await self.bot(result)  # a handler may return a method, as polling executes it

    def _shown(self, message: Message | int | None) -> Message:
        if message is None:
            return self.last_message()
        message_id = message if isinstance(message, int) else message.message_id
        shown = self.api.message(self.chat.id, message_id)
        if shown is None:
            raise AssertionError(
                f"message {message_id} is not on the screen of chat {self.chat.id}"
                " (deleted, or in another chat)"
            )
        return shown

    @staticmethod
    def _inline_buttons(message: Message) -> list[InlineKeyboardButton]:
        markup = message.reply_markup
        return [b for row in markup.inline_keyboard for b in row] if markup else []

    def _find(self, message: Message, locator: ButtonLocator) -> InlineKeyboardButton:
        buttons = self._inline_buttons(message)
        if isinstance(locator, str):
            found = [b for b in buttons if b.text == locator]
        else:
            found = [b for b in buttons if locator(b)]
        if len(found) != 1:
            problem = "no button" if not found else f"{len(found)} buttons"
            raise AssertionError(
                f"{problem} matching {locator!r} on message {message.message_id}; "
                f"buttons: {[b.text for b in buttons]}"
            )
        return found[0]
