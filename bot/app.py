"""Build the bot: storage, providers, services, the Dispatcher with its routers; run it."""

from __future__ import annotations

import asyncio
import logging
import sys
import urllib.request
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.clock import SYSTEM_CLOCK, Clock
from bot.config import Settings
from bot.handlers import access as access_handlers
from bot.handlers import admin as admin_handlers
from bot.handlers import again, buy, errors, language, links, numbers, search, start, support
from bot.handlers import alerts as alert_handlers
from bot.handlers import broadcast as broadcast_handlers
from bot.handlers import export as export_handlers
from bot.handlers import keep_trying as keep_trying_handlers
from bot.handlers import settings as settings_handlers
from bot.handlers import wallet as wallet_handlers
from bot.i18n import UserLocaleMiddleware, create_i18n
from bot.logs import user_log_context
from bot.metrics import Metrics
from bot.middlewares import (
    BuyersOnly,
    PrivateChatsOnly,
    RateLimit,
    RefuseBlocked,
    UserMiddleware,
)
from bot.money import CurrencyConverter
from bot.providers.base import Provider
from bot.providers.http import RetryPolicy, Sleep
from bot.providers.registry import build_providers, enabled_provider_ids
from bot.response_models import PinResponseModels
from bot.services.access import AccessService
from bot.services.admin import AdminService
from bot.services.billing import Billing
from bot.services.broadcast import BroadcastService
from bot.services.catalog import CatalogService
from bot.services.daily_summary import DailySummary
from bot.services.delivery import Watcher, WatchSettings
from bot.services.heat import Heat
from bot.services.keep_trying import KeepTryingService
from bot.services.messenger import Messenger
from bot.services.notifier import Notifier
from bot.services.offer_stats import OfferStatsService
from bot.services.offers import OfferService
from bot.services.orders import OrderService
from bot.services.price_alerts import PriceAlerts
from bot.services.pricing import Pricing
from bot.services.purchase import PurchaseService
from bot.services.reconcile import Reconciler
from bot.services.replicas import OneReplica
from bot.services.stock_alerts import StockAlertService
from bot.services.wallet import WalletService
from bot.timezones import ZoneMiddleware
from bot.web import receive_by_webhook, start_web
from bot.webhook import RentalHooks
from storage.admin_summaries import AdminSummariesRepo
from storage.broadcasts import BroadcastsRepo
from storage.db import Database
from storage.fsm import SqliteStorage
from storage.intents import IntentsRepo
from storage.keep_trying import KeepTryingRepo
from storage.leases import LeasesRepo
from storage.ledger import LedgerRepo
from storage.messages import MessagesRepo
from storage.notices import NoticesRepo
from storage.offer_stats import OfferStatsRepo
from storage.orders import OrdersRepo
from storage.quotes import QuotesRepo
from storage.reminders import RemindersRepo
from storage.stats import StatsRepo
from storage.stock_alerts import StockAlertsRepo
from storage.users import UsersRepo

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The bot cannot start; the message says why and what to set."""


@dataclass
class App:
    settings: Settings
    db: Database
    http: httpx.AsyncClient
    providers: dict[str, Provider]
    bot: Bot
    dp: Dispatcher
    i18n: I18n
    watcher: Watcher
    reconciler: Reconciler
    stock_alerts: StockAlertService
    redis: Redis | None = None  # with REDIS_URL: the FSM and the guards (redis_backends)
    metrics: Metrics = field(default_factory=Metrics)  # this app's registry (/metrics)

    @property
    def broadcasts(self) -> BroadcastService:
        service = self.dp["broadcasts"]
        assert isinstance(service, BroadcastService)
        return service

    @property
    def keep_trying(self) -> KeepTryingService:
        service = self.dp["keep_trying"]
        assert isinstance(service, KeepTryingService)
        return service

    @property
    def daily_summary(self) -> DailySummary:
        service = self.dp["daily_summary"]
        assert isinstance(service, DailySummary)
        return service

    async def close(self) -> None:
        await self.broadcasts.stop()  # what is still pending goes on after the restart
        await self.watcher.outbox.close()  # queued SMS stay stored; they go after the restart
        await self.bot.session.close()
        await self.http.aclose()
        await self.db.close()
        if self.redis is not None:
            await self.redis.aclose()


def provider_client(settings: Settings) -> httpx.AsyncClient:
    """One client, a connection pool per provider (httpx mounts by host): each keeps its
    watcher's POLL_CONCURRENCY connections alive (the shared default keeps 20, so requests
    beyond them opened new ones), and a request scans only its provider's pool (httpcore
    checks every pooled connection on each request: one pool of all four cost half the
    watcher's CPU in the delivery benchmark). Where the environment names a proxy, one pool
    (mounts would bypass it), with room for every provider's connections."""
    if any(urllib.request.getproxies()):
        connections = 4 * settings.poll_concurrency + 16
        return httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=connections + 100, max_keepalive_connections=connections
            )
        )
    per_provider = httpx.Limits(
        max_connections=settings.poll_concurrency + 50,
        max_keepalive_connections=settings.poll_concurrency + 4,
    )
    urls = (
        settings.getsms_base_url,
        settings.smsbus_base_url,
        settings.beesms_base_url,
        settings.smsonline_base_url,
    )
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {}
    for url in urls:
        parsed = httpx.URL(url)
        port = f":{parsed.port}" if parsed.port else ""
        mounts.setdefault(
            f"{parsed.scheme}://{parsed.host}{port}", httpx.AsyncHTTPTransport(limits=per_provider)
        )
    return httpx.AsyncClient(mounts=mounts)


def check_startable(settings: Settings) -> None:
    if settings.bot_token is None:
        raise StartupError("BOT_TOKEN is missing: put the token from @BotFather in .env")
    if not enabled_provider_ids(settings):
        raise StartupError(
            "no provider is enabled: set at least one of GETSMS_API_KEY, SMSBUS_TOKEN, "
            "BEESMS_TOKEN, SMSONLINE_API_KEY in .env"
        )


def make_bot(settings: Settings, session: BaseSession | None = None) -> Bot:
    assert settings.bot_token is not None
    if session is None:
        session = (
            AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
            if settings.telegram_api_url
            else AiohttpSession()
        )
    session.middleware(PinResponseModels())
    return Bot(
        settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


async def create_app(
    settings: Settings,
    *,
    session: BaseSession | None = None,
    clock: Clock = SYSTEM_CLOCK,
    retry: RetryPolicy | None = None,
    sleep: Sleep | None = None,
) -> App:
    """Everything wired; nothing started. Tests pass a fake Bot API session and a fake clock."""
    check_startable(settings)
    redis, shared = None, None
    if settings.redis_url is not None:  # imported only then (redis costs ~6 MB)
        from bot import redis_backends

        redis = redis_backends.connect(settings.redis_url.get_secret_value())
        if (why := await redis_backends.check(redis)) is not None:
            await redis.aclose()
            raise StartupError(f"REDIS_URL: Redis does not answer ({why})")
        shared = redis_backends.shared(redis, settings)
    db = await Database.open(settings.database_location())
    # Replicas: the rounds that one replica at a time does (see bot.services.replicas).
    one_replica = OneReplica(
        LeasesRepo(db), settings.replica_id, clock, timedelta(seconds=settings.order_lease)
    )
    metrics = Metrics()
    http = provider_client(settings)
    secret = settings.webhook_secret()
    # Each SMS.online rent gets a webhook URL of its own (a shared one could push into any).
    hook = (
        RentalHooks(settings.webhook_base_url, secret).issue
        if settings.webhook_base_url and secret
        else None
    )
    providers = dict(
        build_providers(
            settings,
            http,
            clock=clock,
            retry=retry,
            sleep=sleep,
            webhook_url=hook,
            metrics=metrics,
        )
    )
    converter = CurrencyConverter(settings.display_currency, settings.exchange_rates)
    users, order_repo, messages_repo = UsersRepo(db), OrdersRepo(db), MessagesRepo(db)
    intents = IntentsRepo(db)
    pricing = Pricing(converter, settings.price_markup_percent)
    price_alerts = PriceAlerts(settings.admin_ids, clock)
    offers = OfferService(
        providers,
        converter,
        clock=clock,
        user_price=pricing.user_price,
        on_fresh=price_alerts.check,
    )
    wallet = WalletService(LedgerRepo(db), settings.display_currency, clock)

    def pays(user_id: int) -> bool:
        return settings.wallets_on and user_id not in settings.admin_ids

    billing = Billing(wallet, pays)

    i18n = create_i18n()
    dp = Dispatcher(
        storage=shared.fsm if shared else SqliteStorage(db),
        settings=settings,
        providers=providers,
        users=users,
        order_repo=order_repo,
        messages_repo=messages_repo,
        catalog=CatalogService(providers, clock=clock, deadline=settings.catalog_deadline),
        offers=offers,
        purchases=PurchaseService(
            providers,
            offers,
            order_repo,
            intents,
            QuotesRepo(db),
            clock=clock,
            billing=billing,
            guard=shared.purchases if shared else None,
            locks=shared.buy_locks if shared else None,
            metrics=metrics,
        ),
        orders=OrderService(
            providers,
            order_repo,
            messages_repo,
            pricing,
            intents,
            clock=clock,
            billing=billing,
            plans=KeepTryingRepo(db),  # a keep-trying try's card says so
            guard=shared.orders if shared else None,
            metrics=metrics,
        ),
        wallet=wallet,
        billing=billing,  # who pays from a wallet (the confirm screen shows their balance)
    )
    dp.update.outer_middleware(user_log_context)  # the update's user id on each log record
    dp.update.outer_middleware(metrics.count_update)
    for name, observer in dp.observers.items():
        if name not in ("update", "error"):
            observer.middleware(metrics.time_handler)  # by the handler that takes the event
    dp["metrics"] = metrics
    dp.update.outer_middleware(UserMiddleware(users, clock))
    dp.update.outer_middleware(ZoneMiddleware())  # times in the user's zone (after the user)
    dp["clock"] = clock
    UserLocaleMiddleware(i18n).setup(dp)
    access = AccessService(users, settings.admin_ids, settings.access_mode)
    dp["access"] = access
    admin = AdminService(providers, StatsRepo(db), clock, settings.low_balance_alert)
    dp["admin"] = admin
    # Orders someone is waiting on are polled every round; handlers touch what users look at.
    heat = Heat(clock, settings.poll_hot_for, settings.rental_reminders)
    dp["heat"] = heat
    dp["price_alerts"] = price_alerts
    # How offers deliver (badges, the best pick, the admins' table) and "tell me when" alerts.
    offer_stats = OfferStatsService(
        OfferStatsRepo(db),
        min_samples=settings.offer_stats_min_samples,
        good_share=settings.offer_stats_good_percent / 100,
    )
    dp["offer_stats"] = offer_stats
    stock_alerts = StockAlertService(
        StockAlertsRepo(db),
        offers,
        clock,
        currency=settings.display_currency,
        interval=settings.stock_alert_interval,
        lifetime=settings.stock_alert_lifetime,
        ranking=offer_stats,
        sleep=sleep or asyncio.sleep,
        one_replica=one_replica,
    )
    dp["stock_alerts"] = stock_alerts
    dp["daily_summary"] = daily_summary = DailySummary(
        AdminSummariesRepo(db),
        StatsRepo(db),
        offer_stats,
        clock,
        admins=settings.admin_ids,
        hour=settings.admin_summary_hour,
        sleep=sleep or asyncio.sleep,
        one_replica=one_replica,
    )
    rate_limit = RateLimit(
        clock,
        limit=settings.rate_limit_count,
        window=settings.rate_limit_window,
        exempt=access.is_admin,
        counter=shared.rate if shared else None,  # shared by the replicas with Redis
    )
    private_only = PrivateChatsOnly()
    for observer in (dp.message, dp.callback_query):  # in this order, before any handler
        observer.outer_middleware(rate_limit)
        observer.outer_middleware(private_only)
    refuse_blocked = RefuseBlocked(access)
    dp.message.outer_middleware(refuse_blocked)
    dp.callback_query.outer_middleware(refuse_blocked)
    buyers = BuyersOnly(access)
    modules = (
        start,
        language,
        settings_handlers,
        access_handlers,
        admin_handlers,
        broadcast_handlers,
        export_handlers,
        links,
        wallet_handlers,
        buy,
        numbers,
        again,
        support,
        alert_handlers,
        keep_trying_handlers,
        search,  # free text no step took: after every step that waits for text
        errors,
    )
    routers = {module: module.setup() for module in modules}
    spending_routers = (buy, numbers, again, search, alert_handlers, keep_trying_handlers)
    for spending in (routers[module] for module in spending_routers):
        spending.message.middleware(buyers)
        spending.callback_query.middleware(buyers)
    for router in routers.values():
        dp.include_router(router)
    bot = make_bot(settings, session)
    # Offers screens drawn before a slow provider answered get its offers added later, unless
    # the message shows something else by then (every edit of a message is seen here).
    late_offers = buy.LateOffers(bound=settings.provider_timeout * settings.provider_retries + 10)
    bot.session.middleware(late_offers)
    dp["late_offers"] = late_offers
    bot.session.middleware(metrics.time_request)
    notifier = Notifier(bot, users, sleep=sleep or asyncio.sleep, metrics=metrics)
    messenger = Messenger(notifier, users, i18n)
    dp["messenger"] = messenger
    dp["broadcasts"] = BroadcastService(
        BroadcastsRepo(db),
        broadcast_handlers.telegram_send(notifier),
        broadcast_handlers.telegram_report(bot, messenger, i18n),
        clock=clock,
        sleep=sleep or asyncio.sleep,
        replica=settings.replica_id,
        lease=timedelta(seconds=settings.order_lease),
    )
    price_alerts.attach(messenger)
    stock_alerts.attach(alert_handlers.sender(messenger))
    daily_summary.attach(admin_handlers.summary_sender(messenger))
    # Keep trying: a try with no code in time is cancelled and the next offer bought.
    keep_trying = KeepTryingService(
        KeepTryingRepo(db),
        dp["purchases"],
        dp["orders"],
        offers,
        order_repo,
        messages_repo,
        intents,
        clock,
        billing=billing,
        ranking=offer_stats,
        wait=settings.keep_trying_wait,
        interval=settings.poll_interval,
        sleep=sleep or asyncio.sleep,
        one_replica=one_replica,
    )
    keep_trying.attach(keep_trying_handlers.sender(messenger, dp["orders"]))
    dp["keep_trying"] = keep_trying
    reconciler = Reconciler(
        providers,
        intents,
        order_repo,
        messenger,
        clock=clock,
        admins=settings.admin_ids,
        settle_after=timedelta(seconds=2 * settings.provider_timeout + 30),
        interval=settings.reconcile_interval,
        one_replica=one_replica,
        sleep=sleep or asyncio.sleep,
        metrics=metrics,
    )
    watcher = Watcher(
        providers,
        dp["orders"],
        order_repo,
        messages_repo,
        RemindersRepo(db),
        users,
        notifier,
        i18n,
        clock=clock,
        sleep=sleep or asyncio.sleep,
        admin=admin,
        admins=settings.admin_ids,
        notices=NoticesRepo(db),
        heat=heat,
        settings=WatchSettings(
            interval=settings.poll_interval,
            concurrency=settings.poll_concurrency,
            rate=settings.poll_rate,
            hot_for=settings.poll_hot_for,
            cold_interval=settings.poll_cold_interval,
            replica=settings.replica_id,
            lease=timedelta(seconds=settings.order_lease),
            reminders=settings.rental_reminders,
            auto_renew_before=settings.auto_renew_before,
        ),
    )
    return App(
        settings,
        db,
        http,
        providers,
        bot,
        dp,
        i18n,
        watcher,
        reconciler,
        stock_alerts,
        redis,
        metrics=metrics,
    )


def admin_commands() -> list[BotCommand]:
    """What the admins' menu adds to everyone's (in the current locale)."""
    return [
        BotCommand(command="admin", description=_("Admin panel")),
        BotCommand(command="users", description=_("Users, with a search")),
        BotCommand(command="user", description=_("A user's card: /user ID or @username")),
        BotCommand(command="broadcast", description=_("Send a message to every user")),
        BotCommand(command="export", description=_("Orders and ledger as CSV files")),
        BotCommand(command="credit", description=_("Add money to a wallet")),
        BotCommand(command="debit", description=_("Take money from a wallet")),
        BotCommand(command="block", description=_("Block a user")),
        BotCommand(command="unblock", description=_("Unblock a user")),
        BotCommand(command="link", description=_("A link that opens offers")),
    ]


async def set_commands(
    bot: Bot, i18n: I18n, *, wallets: bool = False, admins: frozenset[int] = frozenset()
) -> None:
    """The command menu, in each language we have (/wallet when users pay from wallets).
    Each admin's chat gets the admin commands too (scope chat); an admin who never started
    the bot cannot get one (Telegram: chat not found), which is logged and skipped."""
    for locale in i18n.available_locales:
        with i18n.context(), i18n.use_locale(locale):
            commands = [
                BotCommand(command="start", description=_("Main menu")),
                BotCommand(command="buy", description=_("Get a number")),
                BotCommand(command="numbers", description=_("My numbers")),
                BotCommand(command="alerts", description=_("My alerts")),
                BotCommand(command="help", description=_("How it works")),
                BotCommand(command="language", description=_("Change the language")),
                BotCommand(command="settings", description=_("Time zone")),
                BotCommand(command="support", description=_("Contact support")),
                BotCommand(command="terms", description=_("Terms and refunds")),
            ]
            if wallets:
                commands.append(BotCommand(command="wallet", description=_("My wallet")))
                commands.append(
                    BotCommand(command="paysupport", description=_("Help with a payment"))
                )
        language_code = None if locale == i18n.default_locale else locale
        await bot.set_my_commands(
            commands, scope=BotCommandScopeDefault(), language_code=language_code
        )
        with i18n.context(), i18n.use_locale(locale):
            for_admins = commands + admin_commands()
        for admin in sorted(admins):
            try:
                await bot.set_my_commands(
                    for_admins,
                    scope=BotCommandScopeChat(chat_id=admin),
                    language_code=language_code,
                )
            except TelegramAPIError as exc:
                log.warning("admin %s gets no admin menu (%s): %s", admin, locale, exc.message)


async def set_descriptions(bot: Bot, i18n: I18n) -> None:
    """What an empty chat with the bot shows (description) and its profile and shares show
    (short description), in each language we have and, for every other language, in the
    default one (no ``language_code``). A refusal is logged: the bot runs without them."""
    targets: list[tuple[str, str | None]] = [(i18n.default_locale, None)]
    targets += [(locale, locale) for locale in i18n.available_locales]
    for locale, language_code in targets:
        with i18n.context(), i18n.use_locale(locale):
            description = _(
                "Virtual phone numbers to receive SMS codes: one-time activations and "
                "rentals, every offer compared, cheapest first.\n\n"
                "Pick a service (Telegram, WhatsApp, Google…) and a country, or just type "
                "their name. Codes arrive in this chat with a copy button."
            )
            short = _(
                "Virtual numbers to receive SMS codes. Type a service or a country to start."
            )
        try:
            await bot.set_my_description(description, language_code=language_code)
            await bot.set_my_short_description(short, language_code=language_code)
        except TelegramAPIError as exc:
            log.warning("bot description (%s) not set: %s", language_code or "default", exc)


async def serve(settings: Settings) -> None:
    app = await create_app(settings)
    if not settings.admin_ids:
        log.warning("ADMIN_IDS is empty: nobody may get numbers until you add your user id")
    watching = asyncio.create_task(app.watcher.run(), name="watcher")
    reconciling = asyncio.create_task(app.reconciler.run(), name="reconciler")
    alerting = asyncio.create_task(app.stock_alerts.run(), name="stock alerts")
    summarizing = asyncio.create_task(app.daily_summary.run(), name="daily summary")
    trying = asyncio.create_task(app.keep_trying.run(), name="keep trying")
    # A broadcast a restart interrupted goes on, and one a dead replica held is taken over.
    stop_resuming = asyncio.Event()
    resuming = asyncio.create_task(
        app.broadcasts.keep_resuming(stop_resuming), name="broadcast resume"
    )
    server = None
    try:
        if settings.serves_http:  # webhooks, /healthz, /readyz, /metrics (bot.web)
            server = await start_web(app, settings.webhook_host, settings.webhook_port)
        await set_commands(
            app.bot, app.i18n, wallets=settings.wallets_on, admins=settings.admin_ids
        )
        await set_descriptions(app.bot, app.i18n)
        if settings.telegram_webhook_url:
            await receive_by_webhook(app, handle_signals=True)  # until SIGTERM or SIGINT
        else:
            # Telegram refuses getUpdates while a webhook is set (a bot moved back to polling).
            await app.bot.delete_webhook(drop_pending_updates=False)
            await app.dp.start_polling(app.bot, handle_signals=True)
    finally:
        if server is not None:
            await server.cleanup()  # no new updates; those under way finish first
        app.watcher.stop()
        app.reconciler.stop()
        app.stock_alerts.stop()
        app.daily_summary.stop()
        app.keep_trying.stop()
        stop_resuming.set()
        await resuming
        await watching
        await reconciling
        await alerting
        await summarizing
        await trying
        await app.close()


def run(settings: Settings) -> int:
    try:
        check_startable(settings)
    except StartupError as exc:
        sys.stderr.write(f"cannot start: {exc}\n")
        return 2
    try:
        asyncio.run(serve(settings))
    except StartupError as exc:  # found while starting (Redis does not answer)
        sys.stderr.write(f"cannot start: {exc}\n")
        return 2
    return 0
