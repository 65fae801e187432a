"""The HTTP endpoint providers push SMS to (SMS.online rentals), served with aiohttp.

The path carries a secret derived from the bot token, so only whoever was given the URL (the
provider, at purchase) can post to it; the URL stays the same across restarts. A push is an
optimisation: polling stays the source of truth, so a bad or unknown push is answered and
ignored, never retried into a loop.
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from bot.providers.smsonline import parse_webhook
from bot.services.delivery import Watcher

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
PATH = "/webhooks/smsonline/{secret}"


def webhook_url(base_url: str, secret: str) -> str:
    """What SMS.online is given at purchase (``Settings.webhook_secret`` makes the secret)."""
    return base_url.rstrip("/") + PATH.format(secret=secret)


def create_webhook_app(watcher: Watcher, secret: str) -> web.Application:
    async def smsonline(request: web.Request) -> web.Response:
        if not hmac.compare_digest(request.match_info["secret"], secret):
            return web.Response(status=404)
        if (request.content_length or 0) > MAX_BODY:
            return web.Response(status=413)
        body = await request.read()
        try:
            rent_id, sms = parse_webhook(body)
        except ValueError as exc:
            log.warning("ignored an SMS.online webhook: %s", exc)
            return web.Response(status=400, text="bad request")
        if not await watcher.receive("smsonline", rent_id, sms):
            log.info("SMS.online pushed an SMS for rent %s, which is not ours", rent_id)
        return web.Response(text="OK")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(PATH, smsonline)
    return app


async def start_webhook(watcher: Watcher, bot_token: str, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(create_webhook_app(watcher, bot_token), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("webhook endpoint listening on %s:%s", host, port)
    return runner
