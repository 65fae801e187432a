"""``python -m benchmarks.echo_bot``: a bare aiogram 3 bot, the yardstick of the updates benchmark.

One Dispatcher with two handlers: a text message is echoed (sendMessage), a callback query is
answered (answerCallbackQuery). Nothing else: no middleware, storage or database. It reads the
settings the bot reads, from the environment: ``BOT_TOKEN`` and ``TELEGRAM_API_URL`` (the fake
Bot API); with ``TELEGRAM_WEBHOOK_URL`` it takes updates on a webhook (aiogram's
``SimpleRequestHandler`` at that URL's path, on ``WEBHOOK_HOST``:``WEBHOOK_PORT``, checking
``TELEGRAM_WEBHOOK_SECRET``), else by long polling. It runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import os
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.types import CallbackQuery, Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web


async def echo(message: Message) -> None:
    assert message.text is not None
    await message.answer(message.text, parse_mode=None)


async def tap(query: CallbackQuery) -> None:
    await query.answer()


def dispatcher() -> Dispatcher:
    router = Router(name="echo")
    router.message.register(echo, F.text)
    router.callback_query.register(tap)
    dp = Dispatcher()
    dp.include_router(router)
    return dp


def make_bot() -> Bot:
    return Bot(
        os.environ["BOT_TOKEN"],
        session=AiohttpSession(api=TelegramAPIServer.from_base(os.environ["TELEGRAM_API_URL"])),
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )


def webhook_app(dp: Dispatcher, bot: Bot, url: str) -> web.Application:
    secret = os.environ.get("TELEGRAM_WEBHOOK_SECRET") or None
    app = web.Application()
    SimpleRequestHandler(dp, bot, secret_token=secret).register(app, path=urlsplit(url).path)
    setup_application(app, dp, bot=bot)

    async def announce(_: web.Application) -> None:  # as a bot does: tell Telegram where
        await bot.set_webhook(url, secret_token=secret)

    app.on_startup.append(announce)
    return app


async def poll(dp: Dispatcher, bot: Bot) -> None:
    await bot.delete_webhook()  # as a bot must before getUpdates, if a webhook was set
    await dp.start_polling(bot, handle_signals=True)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    dp, bot = dispatcher(), make_bot()
    url = os.environ.get("TELEGRAM_WEBHOOK_URL")
    if not url:
        asyncio.run(poll(dp, bot))
        return
    web.run_app(
        webhook_app(dp, bot, url),
        host=os.environ.get("WEBHOOK_HOST", "127.0.0.1"),
        port=int(os.environ.get("WEBHOOK_PORT", "8080")),
        print=None,
        access_log=None,
    )


if __name__ == "__main__":
    main()
