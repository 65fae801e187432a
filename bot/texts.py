"""Every user-visible sentence, through gettext. Provider and user text is HTML-escaped here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import escape

import phonenumbers
from aiogram.utils.i18n import get_i18n
from aiogram.utils.i18n import gettext as _
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, get_currency_symbol

from bot import timezones as zones
from bot.money import Money
from bot.providers import identifiers
from bot.providers.base import (
    AccountRestricted,
    BadCredentials,
    CancelBlock,
    CancelNotAllowed,
    CancelTerms,
    InsufficientBalance,
    InvalidRequest,
    NoNumbers,
    OrderClosed,
    OrderKind,
    OrderNotFound,
    PriceAboveLimit,
    ProviderError,
    PurchaseOutcomeUnknown,
    RefundScope,
    Unsupported,
)
from bot.providers.registry import PROVIDER_TITLES
from bot.services.daily_summary import Summary
from bot.services.offer_stats import Badge, Best, BestReason, DeliveryTable, TableRow
from bot.services.offers import OfferRow, PricedOffer
from storage.intents import Intent
from storage.keep_trying import Plan
from storage.ledger import HistoryItem, Operation
from storage.models import Access, OrderStatus, StoredMessage, StoredOrder, User
from storage.stats import Stats
from storage.stock_alerts import StockAlert

# Telegram takes at most 4,096 characters (UTF-16 code units, after entity parsing) in a message.
# Provider text is bounded so that no push and no card can exceed it, whatever was received.
MAX_MESSAGE = 4096
SMS_TEXT_BUDGET = 3000  # an SMS text in a push
CARD_SMS_BUDGET = 2800  # every SMS text on a card together (the rest: codes, senders, times)
MAX_CODE = 64
MAX_SENDER = 64


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def shorten(text: str, limit: int) -> str:
    """``text`` within ``limit`` UTF-16 code units, cut with "…" (never inside a surrogate)."""
    if utf16_len(text) <= limit:
        return text
    out: list[str] = []
    used = 1  # the ellipsis
    for char in text:
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            break
        out.append(char)
    return "".join(out).rstrip() + "…"


def locale() -> str:
    return get_i18n().current_locale


def title(provider: str) -> str:
    return PROVIDER_TITLES.get(provider, provider)


# CLDR's narrow symbols, for a currency that a locale writes as its bare code ("RUB4.50" in
# English): Babel has the standard symbols only.
NARROW_SYMBOLS = {
    "RUB": "₽",
    "UAH": "₴",
    "KZT": "₸",
    "GEL": "₾",
    "AZN": "₼",
    "AMD": "֏",
    "TRY": "₺",
    "INR": "₹",
    "ILS": "₪",
    "KRW": "₩",
    "NGN": "₦",
    "PHP": "₱",
    "VND": "₫",
    "THB": "฿",
}


def money(value: Money | None) -> str:
    """An amount as money reads in the user's language: "$4.50", "4,50 $", "45,00 ₽"."""
    if value is None:
        return "—"
    code, where = value.currency, locale()
    text = str(format_currency(value.amount, code, locale=where))
    narrow = NARROW_SYMBOLS.get(code)
    if narrow is not None and get_currency_symbol(code, where) == code:
        text = text.replace(code, narrow)
    return text


def when(value: datetime | None, now: datetime | None = None) -> str:
    """The absolute time in the user's zone, named ("1 Jan 2026, 15:15 UTC+03:00"; UTC when
    they set none); with ``now``, how far it is from now too ("… (in 3 h 59 min)")."""
    if value is None:
        return "—"
    shown = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(zones.current())
    stamp = format_datetime(shown, "d MMM y, HH:mm", locale=locale())
    text = f"{stamp} {zones.offset_label(shown)}"
    return text if now is None else f"{text} ({relative(value, now)})"


def relative(value: datetime, now: datetime) -> str:
    """How far ``value`` is from ``now``: "in 3 h 59 min", "20 s ago", "just now"."""
    seconds = (value - now).total_seconds()
    if abs(seconds) < 1:
        return _("just now")
    if seconds > 0:
        return _("in {span}").format(span=countdown(seconds))
    return _("{span} ago").format(span=countdown(-seconds))


def phone(digits: str) -> str:
    """International format (+1 415-555-2671) when phonenumbers knows it, else +digits."""
    try:
        parsed = phonenumbers.parse("+" + digits.lstrip("+"))
    except phonenumbers.NumberParseException:
        return "+" + digits
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def country(iso: str) -> str:
    return f"{identifiers.flag(iso)} {identifiers.country_name(iso, locale())}".strip()


def duration(hours: int) -> str:
    if hours % 24 == 0:
        days = hours // 24
        return _("{n} day", "{n} days", days).format(n=days)
    return _("{n} hour", "{n} hours", hours).format(n=hours)


def kind(kind_: OrderKind, hours: int | None) -> str:
    if kind_ is OrderKind.RENTAL:
        return _("rental for {duration}").format(duration=duration(hours or 0))
    return _("activation")


# --- screens --------------------------------------------------------------------------------


def welcome(name: str) -> str:
    return _(
        "Hi, {name}! Here you can get a virtual phone number to receive SMS codes: "
        "a one-time activation or a rental for days.\n\nWhat would you like to do?"
    ).format(name=escape(name))


def help_text(*, wallets: bool = False) -> str:
    text = _(
        "<b>How it works</b>\n"
        "1. Pick a service (Telegram, WhatsApp, Google…) and a country.\n"
        "2. Compare the offers of every provider, cheapest first, and buy one.\n"
        "3. Enter the number where you sign up. Codes appear on the number's card.\n\n"
        "/buy — get a number\n/numbers — your numbers\n/language — change the language\n"
        "/support — contact the operator\n/terms — terms and refund rules"
    )
    text += "\n" + _("/settings — time zone")
    if wallets:
        text += "\n" + _(
            "/wallet — 💰 Wallet: your balance, top-ups with Telegram Stars and history"
        )
    return text


def support(contact: str | None) -> str:
    if contact:
        return _("Questions, problems or payments: write to {contact}.").format(
            contact=escape(contact)
        )
    return _("The operator has not set a support contact yet; please try again later.")


def terms(text: str | None, url: str | None, wallets: bool) -> str:
    """The operator's terms if set, else the bot's real rules (what is refunded and when)."""
    if text:
        return escape(text)
    lines = [
        _("<b>Terms</b>"),
        _(
            "A number is yours for the time shown when you buy it. A refund is what the "
            "provider gives back for a cancel, no more and no less: an activation that received "
            "no SMS is refunded in full; once an SMS arrived, most providers keep the price; a "
            "rental can be cancelled with a refund only within the provider's window, shown on "
            "the number's card."
        ),
    ]
    if wallets:
        lines.append(
            _(
                "Wallet top-ups with Telegram Stars are credited once and spent only on numbers; "
                "refunds go back to the wallet."
            )
        )
    if url:
        lines.append(_("Full terms: {url}").format(url=escape(url)))
    return "\n\n".join(lines)


def menu() -> str:
    return _("What would you like to do?")


def _page_line(page: int, pages: int) -> str:
    if pages <= 1:
        return ""
    line = _("Page {page} of {pages}").format(page=page + 1, pages=pages)
    return f"\n<i>{line}</i>"


EXCERPT = 32  # at most this much of what a user typed is echoed back


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """What a user typed, as echoed back: one line, at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def choose_service(page: int, pages: int, query: str | None) -> str:
    head = _("Choose a service, or type part of its name.")
    if query:
        head = _("Services matching “{query}”:").format(query=escape(excerpt(query)))
    return head + _page_line(page, pages)


def nothing_found(query: str) -> str:
    return _("Nothing matches “{query}”. Try another spelling.").format(
        query=escape(excerpt(query))
    )


def search_prompt() -> str:
    return _("Type the name of a service or a country, for example Telegram or USA.")


def search_results(query: str) -> str:
    return _("Services and countries matching “{query}”:").format(query=escape(excerpt(query)))


def country_services(iso: str, page: int, pages: int, query: str | None = None) -> str:
    head = _("<b>{country}</b>: choose a service, or type part of its name.").format(
        country=escape(country(iso))
    )
    if query:
        head = _("<b>{country}</b>: services matching “{query}”:").format(
            country=escape(country(iso)), query=escape(excerpt(query))
        )
    return head + _page_line(page, pages)


def choose_country(service_name: str, page: int, pages: int, query: str | None) -> str:
    head = _("<b>{service}</b>: choose a country, or type part of its name.").format(
        service=escape(service_name)
    )
    if query:
        head = _("<b>{service}</b>: countries matching “{query}”:").format(
            service=escape(service_name), query=escape(excerpt(query))
        )
    return head + _page_line(page, pages)


def loading_offers(service_name: str, iso: str) -> str:
    return _("⏳ Looking for offers for <b>{service}</b> in {country}…").format(
        service=escape(service_name), country=country(iso)
    )


def offers(
    service_name: str,
    iso: str,
    count: int,
    failed: list[str],
    *,
    best: Best | PricedOffer | None = None,
    hidden: int = 0,
    fetched_at: datetime | None = None,
    now: datetime | None = None,
    pending: list[str] | None = None,
) -> str:
    """The offers screen's text: how many, the best pick and why (a :class:`Best` says how it
    delivers; a bare offer is the cheapest in stock), how fresh the prices are (``fetched_at``,
    told against ``now``), the providers still asked (``pending``) and those that did not
    answer."""
    if count:
        # "cheapest first" is said apart from the plural: in Russian 21, 31... take the form
        # of 1, and the sentence must not lose it there.
        found = _("{n} offer", "{n} offers", count).format(n=count)
        text = _("<b>{service}</b> in {country}: {offers}.").format(
            service=escape(service_name), country=country(iso), offers=found
        )
        if count > 1:
            text = text[:-1] + _(", cheapest first.")
    elif pending:
        text = _("<b>{service}</b> in {country}: no offers yet.").format(
            service=escape(service_name), country=country(iso)
        )
    else:
        text = _("<b>{service}</b> in {country}: no numbers right now. Try later.").format(
            service=escape(service_name), country=country(iso)
        )
    if isinstance(best, Best) and count > 1:
        text += "\n" + best_line(best)
    elif isinstance(best, PricedOffer) and count > 1:
        text += "\n" + _("⭐ Best: {price} at {provider}, the cheapest in stock.").format(
            price=money(best.display_price), provider=title(best.offer.provider)
        )
    if hidden:
        text += "\n" + _("{n} more offers are not listed.").format(n=hidden)
    if fetched_at is not None and now is not None:
        text += "\n<i>" + freshness(fetched_at, now) + "</i>"
    if pending:
        names = ", ".join(title(p) for p in pending)
        text += "\n\n" + _(
            "⏳ Still asking: {providers}… Their offers are added here when they answer."
        ).format(providers=names)
    if failed:
        names = ", ".join(title(p) for p in failed)
        text += "\n\n" + _("Not answering now: {providers}.").format(providers=names)
    return text


def freshness(fetched_at: datetime, now: datetime) -> str:
    """How fresh the offers are, in the user's zone: "Prices as of 12:03 UTC · just now"."""
    shown = fetched_at.astimezone(zones.current())
    stamp = f"{format_datetime(shown, 'HH:mm', locale=locale())} {zones.offset_label(shown)}"
    minutes = int((now - fetched_at).total_seconds() // 60)
    ago = _("just now") if minutes < 1 else _("{n} min ago").format(n=minutes)
    return _("Prices as of {time} · {ago}").format(time=stamp, ago=ago)


def offer_button(
    priced: PricedOffer,
    *,
    option: int | None = None,
    best: bool = False,
    badge: Badge | None = None,
) -> str:
    """One offer on a button: the buyer's price (never the provider's), who sells it, and
    what tells it apart from the same provider's other offers (kind, duration, virtual,
    "option N" when nothing else does); then how it delivers ("✅ 92% · ~40 s") when its
    recent orders tell, else the stock. Short: Telegram shows about 30–40 characters."""
    offer = priced.offer
    parts = [
        money(priced.display_price),
        title(offer.provider),
        kind(offer.kind, offer.duration_hours),
    ]
    if offer.virtual:
        parts.append(_("virtual"))
    if option is not None:
        parts.append(_("option {n}").format(n=option))
    if badge is not None:
        parts.append(offer_badge(badge))  # worth more than the stock, and the row stays short
    elif offer.stock is not None:
        parts.append(_("{n} left").format(n=offer.stock))
    if best:
        parts.insert(0, _("⭐ Best"))
    return " · ".join(parts)  # the badge or stock last: a narrow screen cuts it first


def offer_row(row: OfferRow, *, best: bool = False, badge: Badge | None = None) -> str:
    return offer_button(row.priced, option=row.option, best=best, badge=badge)


def offer_section(rentals: bool) -> str:
    """A section heading on the offers screen (a tap explains the kind)."""
    return _("— 📅 Rentals —") if rentals else _("— 📲 Activations —")


def offer_section_help(rentals: bool) -> str:
    """What a tap on a section heading tells (a callback answer: at most 200 characters)."""
    if rentals:
        return _(
            "Rental: the number is yours for the time shown and receives every SMS. "
            "Renew it to keep it longer."
        )
    return _(
        "Activation: a number for one code from this service, for about 15–20 minutes. "
        "No code, no charge."
    )


def offers_refreshed(fetched_at: datetime, now: datetime) -> str:
    """The answer to a Refresh tap."""
    return _("🔄 Updated. {freshness}").format(freshness=freshness(fetched_at, now))


def confirm(service_name: str, iso: str, priced: PricedOffer, now: datetime) -> str:
    offer = priced.offer
    lines = [
        _("<b>Confirm your purchase</b>"),
        _("Service: {service}").format(service=escape(service_name)),
        _("Country: {country}").format(country=country(iso)),
        _("Provider: {provider}").format(provider=title(offer.provider)),
        _("Type: {kind}").format(kind=kind(offer.kind, offer.duration_hours)),
        # The buyer's price only: the provider's own price and currency are the operator's.
        _("Price: <b>{price}</b>").format(price=money(priced.display_price)),
        "",
    ]
    if offer.kind is OrderKind.RENTAL:
        lines.append(
            _(
                "The number is yours for {duration} (until {end}) and receives every SMS. "
                "Cancelling with a refund is possible only shortly after purchase and before "
                "any SMS arrives."
            ).format(
                duration=duration(offer.duration_hours or 0),
                end=when(now + timedelta(hours=offer.duration_hours or 0)),
            )
        )
    else:
        lines.append(
            _(
                "The number receives codes for this service for a short time (usually 15–20 "
                "minutes). If no code arrives, cancel it: activations without a code are not "
                "charged by the provider."
            )
        )
    return "\n".join(lines)


_STATUS = {
    OrderStatus.ACTIVE: "🟢",
    OrderStatus.FINISHED: "✅",
    OrderStatus.CANCELLED: "↩️",
    OrderStatus.EXPIRED: "⌛",
    OrderStatus.BANNED: "⛔",
    OrderStatus.FAILED: "⚠️",
}


def status(value: OrderStatus) -> str:
    names = {
        OrderStatus.ACTIVE: _("active"),
        OrderStatus.FINISHED: _("finished"),
        OrderStatus.CANCELLED: _("cancelled"),
        OrderStatus.EXPIRED: _("expired"),
        OrderStatus.BANNED: _("reported and closed"),
        OrderStatus.FAILED: _("failed"),
    }
    return f"{_STATUS[value]} {names[value]}"


def order_card(
    order: StoredOrder,
    messages: tuple[StoredMessage, ...],
    now: datetime,
    plan: Plan | None = None,
) -> str:
    """The number card; its times in the user's zone and relative to ``now``; the keep-trying
    ``plan`` it is a try of, while that plan runs."""
    service_name = identifiers.service_name(order.service)
    lines = [
        f"📱 <code>{escape(phone(order.phone))}</code>",
        f"{escape(service_name)} · {country(order.country)}",
        f"{title(order.provider)} · {kind(order.kind, order.duration_hours)}",
        _("Status: {status}").format(status=status(order.status)),
    ]
    if order.expires_at:
        until = when(order.expires_at, now if order.is_active else None)
        lines.append(_("Until: {when}").format(when=until))
    if order.display_price:
        lines.append(_("Price: {price}").format(price=money(order.display_price)))
    if plan is not None and plan.live and order.is_active:
        lines.append(keep_trying_line(plan))
    lines.append("")
    if messages:
        lines.append(_("<b>Messages</b>"))
        shown = messages[-5:]
        for message in shown:  # however long the SMS, the card stays within Telegram's limit
            lines.append(sms_line(message, limit=CARD_SMS_BUDGET // len(shown), now=now))
    elif order.is_active:
        lines.append(_("Waiting for SMS… codes appear here."))
    return "\n".join(lines)


def keep_trying_line(plan: Plan) -> str:
    """On the card of a keep-trying plan's current try."""
    return _("🔁 Keep trying: try {n} of {total}, up to {price}").format(
        n=max(plan.tries_used, 1), total=plan.tries, price=money(plan.max_price)
    )


def sms_line(
    message: StoredMessage, limit: int = SMS_TEXT_BUDGET, now: datetime | None = None
) -> str:
    code = f"<code>{escape(shorten(message.code, MAX_CODE))}</code>" if message.code else ""
    text = escape(shorten(message.text or "", limit))
    sender = f" ({escape(shorten(message.sender, MAX_SENDER))})" if message.sender else ""
    stamp = when(message.received_at or message.stored_at, now)
    body = " — ".join(part for part in (code, text) if part)
    return f"• {body}{sender}\n  <i>{stamp}</i>"


def numbers_list(active: int, past_page: bool, empty: bool, *, shown: int) -> str:
    if empty:
        return _("You have no numbers yet. Buy one from the menu: /buy")
    if past_page:
        return _("<b>Your past numbers</b>") if shown else _("No past numbers yet.")
    return _(
        "<b>Your numbers</b> ({n} active). Tap one to open it.",
        "<b>Your numbers</b> ({n} active). Tap one to open it.",
        active,
    ).format(n=active)


def order_button(order: StoredOrder, last_code: str | None) -> str:
    code = f" · {last_code}" if last_code else ""
    return (
        f"{_STATUS[order.status]} {phone(order.phone)} · "
        f"{identifiers.service_name(order.service)}{code}"
    )


def renew_menu(order: StoredOrder) -> str:
    return _("Renew {phone} for how long?").format(phone=escape(phone(order.phone)))


def renewed(until: datetime | None) -> str:
    return _("Renewed. The number is yours until {when}.").format(when=when(until))


# --- messages the bot sends on its own ------------------------------------------------------


def _order_head(order: StoredOrder) -> str:
    service = escape(identifiers.service_name(order.service))
    return f"{service} · <code>{escape(phone(order.phone))}</code>"


def sms_push(
    order: StoredOrder, message: StoredMessage, *, plain: bool = False, now: datetime | None = None
) -> str:
    """A new SMS: the code first, then the text, sender and time (relative to ``now`` when
    given); within Telegram's limit whatever the provider sent (a text too long is shortened,
    the code is always there). ``plain``: the same without HTML, for when Telegram refuses the
    markup."""
    code = shorten(message.code, MAX_CODE) if message.code else None
    text = message.text or ""
    short = shorten(text, SMS_TEXT_BUDGET)
    sender = shorten(message.sender, MAX_SENDER) if message.sender else None
    stamp = when(message.received_at or message.stored_at, now)
    cut = _("(shortened: {n} characters in all)").format(n=len(text)) if short != text else None
    if plain:
        service = identifiers.service_name(order.service)
        lines = [f"📩 {service} · {phone(order.phone)}"]
        if code:
            lines.append(_("Code: {code}").format(code=code))
        lines += [part for part in (short, cut) if part]
        lines.append(" · ".join(part for part in (sender, stamp) if part))
        return "\n".join(lines)
    lines = [f"📩 {_order_head(order)}"]
    if code:
        lines.append(_("Code: <code>{code}</code>").format(code=escape(code)))
    if short:
        lines.append(f"<blockquote>{escape(short)}</blockquote>")
    if cut:
        lines.append(f"<i>{cut}</i>")
    meta = [escape(sender)] if sender else []
    meta.append(stamp)
    lines.append(f"<i>{' · '.join(meta)}</i>")
    return "\n".join(lines)


def order_ended(order: StoredOrder, got_sms: bool) -> str:
    head = _order_head(order)
    if order.kind is OrderKind.ACTIVATION and not got_sms:
        return _(
            "⌛ {order}: no code arrived in time. The order is closed ({status}); "
            "an activation without a code is not charged. Try another offer: /buy"
        ).format(order=head, status=status(order.status))
    if order.kind is OrderKind.RENTAL:
        return _("⌛ {order}: the rental has ended ({status}).").format(
            order=head, status=status(order.status)
        )
    return _("{order}: the order is closed ({status}).").format(
        order=head, status=status(order.status)
    )


def rental_reminder(order: StoredOrder, left: str) -> str:
    return _(
        "⏰ {order}: the rental ends in {left} ({when}). Renew it to keep the number:"
    ).format(order=_order_head(order), left=left, when=when(order.expires_at))


def time_left(seconds: float) -> str:
    """How long a rental still runs: "3 h 59 min" (never less than a minute)."""
    return countdown(max(60.0, seconds))


# --- settings, buy again, links ---------------------------------------------------------------


def zone_name(name: str | None, now: datetime) -> str:
    """A stored zone as people read it: "Europe/Moscow (UTC+03:00)", "UTC", "UTC+05:30"."""
    tz = zones.resolve(name)
    if name is None or tz is None:
        return "UTC"
    if name.startswith("UTC"):  # UTC and fixed offsets name themselves
        return name
    return f"{escape(name)} ({zones.offset_label(now.astimezone(tz))})"


def _local_time(now: datetime, name: str | None) -> str:
    shown = now.astimezone(zones.resolve(name) or UTC)
    return str(format_datetime(shown, "HH:mm", locale=locale()))


def settings(zone: str | None, now: datetime) -> str:
    shown = zone_name(zone, now) if zone else _("UTC (not set)")
    return "\n".join(
        (
            _("<b>Settings</b>"),
            _("Time zone: <b>{zone}</b>; it is {time} there now.").format(
                zone=shown, time=_local_time(now, zone)
            ),
            "",
            _(
                "Times are shown in this zone. Pick one below, or type its name (Europe/Paris, "
                "New York) or an offset (UTC+3, UTC-5:30)."
            ),
        )
    )


def zone_set(zone: str, now: datetime) -> str:
    return _("✅ Time zone: {zone}. It is {time} there now.").format(
        zone=zone_name(zone, now), time=_local_time(now, zone)
    )


def zone_invalid(text: str) -> str:
    return _(
        "“{text}” is not a time zone I know. Type a name like Europe/Paris or an offset like "
        "UTC+3, or pick one below."
    ).format(text=escape(excerpt(text)))


def buy_again_gone(provider: str) -> str:
    return _("{provider} no longer sells that number. Here are the current offers:").format(
        provider=title(provider)
    )


def link_invalid() -> str:
    return _("That link does not open anything here. Here is the menu:")


def link_usage() -> str:
    return _("Usage: /link SERVICE COUNTRY, e.g. /link tg us")


def link_unknown(service: str, country_code: str) -> str:
    return _("Nobody sells {service} in {country} here: no link made.").format(
        service=escape(excerpt(service)), country=escape(excerpt(country_code))
    )


def link_made(service_name: str, iso: str, url: str) -> str:
    return _("Link to the offers for <b>{service}</b> in {country}:\n{url}").format(
        service=escape(service_name), country=country(iso), url=escape(url)
    )


def auto_renewed(order: StoredOrder) -> str:
    return _("🔁 {order}: renewed automatically until {when}.").format(
        order=_order_head(order), when=when(order.expires_at)
    )


def auto_renew_failed(order: StoredOrder, reason: str) -> str:
    return _(
        "⚠️ {order}: automatic renewal failed: {reason} The rental ends {when}; "
        "you can still renew it by hand."
    ).format(order=_order_head(order), reason=reason, when=when(order.expires_at))


def auto_renew_no_money(order: StoredOrder, price: Money, balance: Money, missing: Money) -> str:
    return _(
        "⚠️ {order}: auto-renew could not be paid: the renewal costs {price}, your wallet has "
        "{balance}. Top up at least {missing} before {when} and it renews by itself; "
        "otherwise the rental ends then."
    ).format(
        order=_order_head(order),
        price=money(price),
        balance=money(balance),
        missing=money(missing),
        when=when(order.expires_at),
    )


def auto_renew_state(on: bool) -> str:
    return _("Auto-renew is on.") if on else _("Auto-renew is off.")


# --- short answers (callback alerts) ---------------------------------------------------------


def in_progress() -> str:
    return _("Already in progress, one moment…")


def try_again_shortly() -> str:
    return _("Nothing was bought: please tap again in a moment.")


def already_bought() -> str:
    return _("Already bought: see your numbers.")


def not_yours() -> str:
    return _("This button is no longer valid.")


def order_not_active() -> str:
    return _("This number is no longer active.")


def offer_gone(provider: str) -> str:
    return _("That offer from {provider} is gone. Here are the current ones:").format(
        provider=title(provider)
    )


def price_rose(provider: str, price: str) -> str:
    return _("{provider} raised the price to {price}. Buy at the new price?").format(
        provider=title(provider), price=price
    )


def cancelled(refunded: Money | None = None, *, unknown: bool = False) -> str:
    if unknown:
        return _(
            "Cancelled. The provider did not say what it gave back, so nothing was refunded "
            "yet; write to /support if you expected a refund."
        )
    if refunded is not None:
        return _("Cancelled. {amount} is back in your wallet.").format(amount=money(refunded))
    return _("Cancelled.")


def countdown(seconds: float) -> str:
    """A short span, its two largest units: "2 d 5 h", "3 h 59 min", "1 min 40 s", "15 min"."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        both, one = _("{d} d {h} h"), _("{d} d")
        return (both if hours else one).format(d=days, h=hours)
    if hours:
        both, one = _("{h} h {m} min"), _("{h} h")
        return (both if minutes else one).format(h=hours, m=minutes)
    if minutes:
        both, one = _("{m} min {s} s"), _("{m} min")
        return (both if secs else one).format(m=minutes, s=secs)
    return _("{s} s").format(s=secs)


def cancel_button(terms: CancelTerms, now: datetime) -> str | None:
    """The card's cancel label under the provider's rules; None when a cancel cannot succeed."""
    if terms.blocked is CancelBlock.TOO_EARLY and terms.opens_at is not None:
        left = countdown((terms.opens_at - now).total_seconds())
        return _("⏳ Cancel possible in {left}").format(left=left)
    if terms.blocked is not None:
        return None
    if terms.refund is RefundScope.NONE:
        return _("✖️ Cancel (no refund)")
    if terms.refund is RefundScope.UNKNOWN:
        return _("✖️ Cancel (refund not certain)")
    return _("✖️ Cancel")


def cancel_refused(terms: CancelTerms, now: datetime) -> str:
    """Why a cancel is not possible now, in the provider's real terms."""
    if terms.blocked is CancelBlock.TOO_EARLY and terms.opens_at is not None:
        left = countdown((terms.opens_at - now).total_seconds())
        return _("The provider allows a cancel only a little later: in {left}.").format(left=left)
    if terms.blocked is CancelBlock.SMS_RECEIVED:
        return _("An SMS already arrived on this number, so it can no longer be cancelled.")
    if terms.blocked is CancelBlock.TOO_LATE:
        return _("The time to cancel this number is over.")
    return _("This number cannot be cancelled.")


def purchase_unconfirmed(provider: str, listed: bool, settles_by: datetime) -> str:
    """The provider's answer to a purchase was lost: the truth, and when the money is back."""
    if listed:
        return _(
            "{provider} did not confirm the purchase, so no number was confirmed yet. We are "
            "checking its records: if the number was issued you will get it here, otherwise "
            "your money comes back. Please don't buy again right away."
        ).format(provider=title(provider))
    return _(
        "{provider} did not confirm the purchase: no number was confirmed. If you paid, the "
        "money is held until {when} and then comes back (the provider charges nothing for a "
        "number that received no SMS)."
    ).format(provider=title(provider), when=when(settles_by))


def purchase_recovered(order: StoredOrder) -> str:
    return _("✅ Your purchase went through after all: {order}. Open it in your numbers.").format(
        order=_order_head(order)
    )


def purchase_released(amount: Money | None) -> str:
    if amount is None:
        return _("The purchase you tried earlier did not go through: no number was bought.")
    return _(
        "The purchase you tried earlier did not go through: no number was bought, and "
        "{amount} is back in your wallet."
    ).format(amount=money(amount))


def renewal_confirmed(order: StoredOrder) -> str:
    """A renewal whose answer was lost turned out to have gone through."""
    return _("⏩ {order}: the renewal went through; it is yours until {when}.").format(
        order=_order_head(order), when=when(order.expires_at)
    )


def order_ended_refund(order: StoredOrder, refunded: Money | None) -> str:
    """A cancel whose answer was lost turned out to have gone through."""
    if refunded is not None:
        return _("{order} is cancelled; {amount} is back in your wallet.").format(
            order=_order_head(order), amount=money(refunded)
        )
    return _("{order} is cancelled.").format(order=_order_head(order))


def action_not_done(action: str, paid: Money | None) -> str:
    """A renewal or cancel whose answer was lost turned out not to have happened."""
    if action == "renew":
        if paid is not None:
            return _(
                "The renewal you asked for did not go through; {amount} is back in your wallet."
            ).format(amount=money(paid))
        return _("The renewal you asked for did not go through.")
    return _("The cancel you asked for did not go through: the number is still yours.")


def admin_intent_unresolved(intent: Intent, why: str) -> str:
    what = f"#{intent.id} {intent.action.value} {title(intent.provider)}, user {intent.user_id}"
    return _(
        "⚠️ A purchase, renewal or cancel could not be reconciled yet ({what}): {why}. "
        "The bot keeps trying."
    ).format(what=escape(what), why=escape(why))


def admin_unowned_order(provider: str, order_id: str, number: str) -> str:
    return _(
        "⚠️ {provider} has an active order {order} ({number}) that no user of the bot owns. "
        "Check it in the provider's account."
    ).format(provider=title(provider), order=escape(order_id), number=escape(number))


def no_new_sms(checked_at: datetime) -> str:
    return _("No new SMS yet (checked {when}).").format(when=when(checked_at))


def wallet_adjusted(amount: Money, balance: Money) -> str:
    """Told to the user when an admin credits or debits their wallet."""
    if amount.amount >= 0:
        return _("💰 The operator added {amount} to your wallet. Balance: {balance}.").format(
            amount=money(amount), balance=money(balance)
        )
    taken = Money(-amount.amount, amount.currency)
    return _("The operator took {amount} from your wallet. Balance: {balance}.").format(
        amount=money(taken), balance=money(balance)
    )


def unknown_command() -> str:
    return _("I don't know that command. Here is what I can do:")


def not_understood() -> str:
    return _(
        "I didn't get that. Pick what you want below, or type the name of a service or a "
        "country to find it."
    )


def admin_provider_notice(provider: str, notice: str) -> str:
    return _("⚠️ {provider}: {notice}").format(provider=title(provider), notice=escape(notice))


def admin_price_outlier(what: str) -> str:
    return _(
        "⚠️ A provider's price looks wrong: {what}. Check that provider's account currency "
        "setting (e.g. GETSMS_CURRENCY) against its website."
    ).format(what=escape(what))


def quote_invalid() -> str:
    return _("That confirmation is no longer valid. Here are the current offers:")


def finished() -> str:
    return _("Done. The number is closed.")


def banned(refunded: Money | None = None) -> str:
    if refunded is not None:
        return _("Reported. The number is closed; {amount} is back in your wallet.").format(
            amount=money(refunded)
        )
    return _("Reported. The number is closed.")


def another_code_requested() -> str:
    return _("Asked for another code: it will appear here when it arrives.")


def language_prompt() -> str:
    return _("Choose your language:")


def language_set() -> str:
    return _("Language changed.")


def private_bot() -> str:
    return _(
        "This bot is private: only people its owner approved can get numbers here. "
        "You can ask for access."
    )


def not_enough_balance(price: Money, balance: Money, missing: Money) -> str:
    return _(
        "Not enough money in your wallet: this costs {price}, you have {balance}. "
        "Top up at least {missing}."
    ).format(price=money(price), balance=money(balance), missing=money(missing))


def confirm_wallet(price: Money, balance: Money) -> str:
    """Under a confirmation, for a user who pays from the wallet."""
    if balance.amount >= price.amount:
        left = Money(balance.amount - price.amount, balance.currency)
        return _("💰 Your wallet: {balance}. Left after purchase: <b>{left}</b>").format(
            balance=money(balance), left=money(left)
        )
    missing = Money(price.amount - balance.amount, price.currency)
    return _("💰 Your wallet: {balance}. Not enough: <b>{missing}</b> more is needed.").format(
        balance=money(balance), missing=money(missing)
    )


def signed_money(value: Money) -> str:
    """+$5.00 / −$0.55: a wallet operation's effect."""
    sign = "+" if value.amount > 0 else "−" if value.amount < 0 else ""
    return sign + money(Money(abs(value.amount), value.currency))


def history_line(item: HistoryItem) -> str:
    what = ""
    if item.service is not None and item.country is not None:
        what = f"{escape(identifiers.service_name(item.service))}, {country(item.country)}"
    labels = {
        Operation.TOPUP: _("⭐ Top-up"),
        Operation.PURCHASE: _("📲 Purchase: {what}"),
        Operation.RENEWAL: _("🔄 Renewal: {what}"),
        Operation.REFUND: _("↩️ Refund: {what}"),
        Operation.CREDIT: _("💰 Added by the operator"),
        Operation.DEBIT: _("💰 Taken by the operator"),
    }
    label = labels[item.operation].format(what=what or "—")
    if item.pending:
        label += " " + _("(in progress)")
    return f"{when(item.created_at)} · <b>{signed_money(item.amount)}</b> · {label}"


def wallet(balance: Money, history: list[HistoryItem] | None = None) -> str:
    text = _("<b>Your wallet</b>: {balance}").format(balance=money(balance))
    if history is not None:
        if history:
            lines = "\n".join(history_line(item) for item in history)
            text += "\n\n" + _("<b>Latest operations</b>, newest first:") + "\n" + lines
        else:
            text += "\n\n" + _("No operations yet.")
    return text + "\n\n" + _("Top up with Telegram Stars:")


def invoice_title(amount: Money) -> str:
    return _("Wallet top-up: {amount}").format(amount=money(amount))


def invoice_description(amount: Money, stars: int) -> str:
    return _("{amount} for numbers in this bot, paid with {stars} Stars.").format(
        amount=money(amount), stars=stars
    )


def invoice_outdated() -> str:
    return _("This invoice is out of date. Please open the wallet and top up again.")


def topped_up(amount: Money, balance: Money) -> str:
    return _("✅ {amount} added. Your balance: {balance}").format(
        amount=money(amount), balance=money(balance)
    )


def credited(user_id: int, amount: Money, balance: Money) -> str:
    return _("User {id}: {amount}; balance now {balance}.").format(
        id=user_id, amount=money(amount), balance=money(balance)
    )


def credit_usage() -> str:
    return _("Usage: /credit USER_ID AMOUNT [reason] or /debit USER_ID AMOUNT [reason]")


def credit_amount_invalid(limit: Money) -> str:
    return _(
        "Nothing written: the amount must be a positive number with at most two decimals, "
        "at most {limit}."
    ).format(limit=money(limit))


def wallets_off() -> str:
    return _(
        "This bot has no wallet to top up: numbers here are paid by its owner. "
        "Open the menu to get one."
    )


def private_chat_only() -> str:
    return _(
        "For your privacy, numbers, codes and the wallet are only in a private chat with me. "
        "Tap the button to open it."
    )


def open_private_chat() -> str:
    return _("Open the private chat")


def private_chat_button_only() -> str:
    return _("This works only in a private chat with the bot.")


def slow_down(seconds: int) -> str:
    return _("Too many requests at once. Please wait {seconds} s and try again.").format(
        seconds=seconds
    )


def debit_refused(user_id: int, balance: Money) -> str:
    return _("Not taken: user {id} has only {balance}.").format(id=user_id, balance=money(balance))


def low_balance(provider: str, balance: Money) -> str:
    return _("⚠️ {provider}: the balance is down to {balance}. Top it up at the provider.").format(
        provider=title(provider), balance=money(balance)
    )


def _amounts(values: dict[str, Decimal]) -> str:
    """Amounts in several currencies on one line ("$1.50, 45.00 RUB"), "—" when none."""
    return ", ".join(money(Money(a, c)) for c, a in sorted(values.items())) or "—"


def users_count(n: int) -> str:
    return _("{n} user", "{n} users", n).format(n=n)


def orders_count(n: int) -> str:
    return _("{n} order", "{n} orders", n).format(n=n)


def admin_panel(lines: list[tuple[str, Money | None]], stats: Stats) -> str:
    rows = [_("<b>Provider balances</b>")]
    for provider, balance in lines:
        shown = money(balance) if balance is not None else _("not available")
        rows.append(f"• {title(provider)}: {shown}")
    rows += [
        "",
        _(
            "<b>Users</b>: {users} · approved {approved} · asking {requested} · blocked {blocked}"
        ).format(
            users=users_count(stats.users),
            approved=stats.approved,
            requested=stats.requested,
            blocked=stats.blocked,
        ),
        _("<b>Orders</b>: {orders} · active {active} · got a code {share}").format(
            orders=orders_count(stats.orders), active=stats.active, share=f"{stats.code_share:.0%}"
        ),
        "",
        _("Revenue from wallets: {amounts}").format(amounts=_amounts(stats.revenue)),
        _("Spent at providers: {amounts}").format(amounts=_amounts(stats.spend)),
        _("<b>Profit</b>: {amounts}").format(amounts=_amounts(stats.profit)),
    ]
    if stats.failed_deliveries:
        rows.append(
            _("⚠️ SMS that Telegram refused to deliver: {n} (see the log)").format(
                n=stats.failed_deliveries
            )
        )
    return "\n".join(rows)


def admin_providers(lines: list[tuple[str, Money | None]], stats: Stats) -> str:
    rows = [_("<b>Providers</b>")]
    balances = dict(lines)
    for provider in sorted(set(balances) | set(stats.providers)):
        figures = stats.providers.get(provider)
        balance = balances.get(provider)
        rows += [
            "",
            f"<b>{title(provider)}</b>",
            _("Balance: {balance}").format(
                balance=money(balance) if balance is not None else _("not available")
            ),
        ]
        if figures is not None:
            rows.append(
                _("{orders}, {coded} with a code, spent {spend}").format(
                    orders=orders_count(figures.orders),
                    coded=figures.with_code,
                    spend=_amounts(figures.spend),
                )
            )
    return "\n".join(rows)


def requests_button(n: int) -> str:
    return _("🙋 Requests ({n})").format(n=n)


def no_requests() -> str:
    return _("No access requests are waiting.")


def user_name(user: User) -> str:
    """The user's name as Telegram reported it (escaped), else "User 123"."""
    return escape(user.full_name) if user.full_name else _("User {id}").format(id=user.id)


def user_label(user: User) -> str:
    """A plain line for a button: "Anna @anna"."""
    name = user.full_name or _("User {id}").format(id=user.id)
    handle = f" @{user.username}" if user.username else ""
    return shorten(name + handle, 40)


def _access_name(access: Access) -> str:
    return {
        Access.NONE: _("not asked"),
        Access.REQUESTED: _("asking"),
        Access.APPROVED: _("approved"),
        Access.DENIED: _("denied"),
    }[access]


def user_card(
    user: User,
    balance: Money,
    orders: int,
    recent: list[StoredOrder] | None = None,
    history: list[HistoryItem] | None = None,
) -> str:
    handle = f" @{escape(user.username)}" if user.username else ""
    lines = [
        _("<b>{name}</b>{handle} · id <code>{id}</code>").format(
            name=user_name(user), handle=handle, id=user.id
        ),
        _("Access: {access}").format(access=_access_name(user.access)),
        _("Wallet: {balance}").format(balance=money(balance)),
        _("Orders: {n}").format(n=orders),
        _("First seen: {when}").format(when=when(user.first_seen)),
    ]
    if user.blocked:
        lines.append(_("⛔ Blocked"))
    if user.blocked_bot:
        lines.append(_("🔕 Has blocked the bot"))
    if recent:
        lines += ["", _("<b>Latest orders</b>")]
        for order in recent:
            price = money(order.display_price)  # "—" when the user paid nothing shown
            lines.append(
                f"#{order.id} · {escape(identifiers.service_name(order.service))} · "
                f"{country(order.country)} · <code>{escape(phone(order.phone))}</code> · "
                f"{status(order.status)} · {price}"
            )
    if history:
        lines += ["", _("<b>Wallet history</b>")]
        lines += [history_line(item) for item in history]
    return "\n".join(lines)


def user_usage() -> str:
    return _("Usage: /user USER_ID or /user @username")


def users_list(users: list[User], total: int, page: int, pages: int, query: str | None) -> str:
    if not users:
        if query:
            return _(
                "No users match «{query}». Try part of a name, an @username or an id: /users TEXT"
            ).format(query=escape(excerpt(query)))
        return _("No users yet.")
    if query:
        head = _("<b>Users</b> matching «{query}»: {users}").format(
            query=escape(excerpt(query)), users=users_count(total)
        )
    else:
        head = _("<b>Users</b>: {users}").format(users=users_count(total))
    rows = [head + _page_line(page, pages), ""]
    for user in users:
        handle = f" @{escape(user.username)}" if user.username else ""
        marks = " ⛔" if user.blocked else ""
        marks += " 🔕" if user.blocked_bot else ""
        rows.append(
            f"• {user_name(user)}{handle} · <code>{user.id}</code> · "
            f"{_access_name(user.access)}{marks}"
        )
    rows += ["", _("Tap a user for their card; search with /users TEXT.")]
    return "\n".join(rows)


def access_decided(
    user: User | None, user_id: int, approved: bool, admin: str, changed: bool
) -> str:
    """The admins' request message, edited to its outcome."""
    name = user_name(user) if user is not None else str(user_id)
    handle = f" @{escape(user.username)}" if user is not None and user.username else ""
    values = {"name": name, "handle": handle, "id": user_id, "admin": escape(admin)}
    if not changed:
        if approved:
            return _("✅ {name}{handle} (id <code>{id}</code>) was already approved.").format(
                **values
            )
        return _("🚫 {name}{handle} (id <code>{id}</code>) was already denied.").format(**values)
    if approved:
        return _("✅ Approved {name}{handle} (id <code>{id}</code>), by {admin}.").format(**values)
    return _("🚫 Denied {name}{handle} (id <code>{id}</code>), by {admin}.").format(**values)


def access_approved_push() -> str:
    return _("✅ Your access was approved. You can get numbers now.")


def broadcast_usage() -> str:
    return _(
        "Write the message after the command, e.g. /broadcast Hello everyone! "
        "Bold, italics and links are kept."
    )


def broadcast_question(n: int) -> str:
    return _(
        "📣 Send the message above to {n} user?",
        "📣 Send the message above to {n} users?",
        n,
    ).format(n=n)


def broadcast_cancelled() -> str:
    return _("Broadcast cancelled; nothing was sent.")


def broadcast_gone() -> str:
    return _("This broadcast was already sent or cancelled.")


def broadcast_progress(settled: int, total: int, sent: int, blocked: int, failed: int) -> str:
    return _(
        "📣 Sending… {settled}/{total}\nDelivered {sent} · blocked the bot {blocked} · "
        "failed {failed}"
    ).format(settled=settled, total=total, sent=sent, blocked=blocked, failed=failed)


def broadcast_done(total: int, sent: int, blocked: int, failed: int) -> str:
    return _(
        "📣 Broadcast finished: delivered to {sent} of {total}\nBlocked the bot {blocked} · "
        "failed {failed}"
    ).format(total=total, sent=sent, blocked=blocked, failed=failed)


def export_orders_caption(n: int) -> str:
    return _("📄 Orders: {orders} (CSV)").format(orders=orders_count(n))


def export_ledger_caption(n: int) -> str:
    return _("📄 Wallet ledger: {n} row (CSV)", "📄 Wallet ledger: {n} rows (CSV)", n).format(n=n)


def blocked() -> str:
    return _("Sorry, this bot is not available to you.")


def access_sent() -> str:
    return _("Your request was sent. You'll get a message when it is answered.")


def access_pending() -> str:
    return _("Your request is waiting for an answer.")


def access_denied() -> str:
    return _("Sorry, the owner declined your request.")


def access_granted() -> str:
    return _("✅ You can get numbers now: /buy")


def access_request_for_admin(name: str, username: str | None, user_id: int) -> str:
    handle = f" @{escape(username)}" if username else ""
    return _("🙋 {name}{handle} (id <code>{id}</code>) asks for access.").format(
        name=escape(name), handle=handle, id=user_id
    )


def admins_only() -> str:
    return _("This command is for the bot's admins.")


def user_blocked(user_id: int, blocked: bool) -> str:
    if blocked:
        return _("User {id} is blocked.").format(id=user_id)
    return _("User {id} is unblocked.").format(id=user_id)


def unknown_user(text: str) -> str:
    return _("No such user: {text}. Use the numeric Telegram id or the @username.").format(
        text=escape(excerpt(text))
    )


def unexpected_error() -> str:
    return _("Something went wrong on our side. Please try again in a minute.")


def action_unconfirmed() -> str:
    """A cancel or renewal whose answer was lost: don't invite a repeat."""
    return _(
        "The provider did not confirm this in time. We are checking and will tell you the "
        "outcome here; please don't repeat it meanwhile."
    )


def provider_error(exc: ProviderError) -> str:
    """What to tell the user, and what to do next, for a provider's typed error."""
    name = title(exc.provider)
    if isinstance(exc, PurchaseOutcomeUnknown):
        return _(
            "{provider} did not confirm the purchase in time. If a number was issued, it will "
            "appear in your numbers shortly; please don't buy again right away."
        ).format(provider=name)
    if isinstance(exc, NoNumbers):
        return _("{provider} has no numbers left for this. Pick another offer.").format(
            provider=name
        )
    if isinstance(exc, InsufficientBalance | BadCredentials | AccountRestricted):
        return _("{provider} can't sell this right now. Pick another offer or try later.").format(
            provider=name
        )
    if isinstance(exc, PriceAboveLimit):
        return _("{provider} raised the price. Pick an offer again.").format(provider=name)
    if isinstance(exc, CancelNotAllowed):
        return _(
            "{provider} doesn't allow that now (too early, too late, or an SMS already came)."
        ).format(provider=name)
    if isinstance(exc, OrderClosed):
        return _("This number is already closed at {provider}.").format(provider=name)
    if isinstance(exc, OrderNotFound):
        return _("{provider} no longer knows this number.").format(provider=name)
    if isinstance(exc, InvalidRequest | Unsupported):
        return _("{provider} doesn't support that for this number.").format(provider=name)
    return _("{provider} is not answering. Try again in a minute or pick another offer.").format(
        provider=name
    )


# --- how offers deliver (bot.services.offer_stats) -------------------------------------------


def typical_time(seconds: int) -> str:
    """A rough duration: "~40 s", "~3 min", "~2 h"."""
    if seconds < 90:
        return _("~{n} s").format(n=max(1, seconds))
    minutes = round(seconds / 60)
    if minutes < 90:
        return _("~{n} min").format(n=minutes)
    return _("~{n} h").format(n=round(seconds / 3600))


def percent(value: int) -> str:
    return _("{percent}%").format(percent=value)


def offer_badge(badge: Badge) -> str:
    """How an offer delivered recently: "✅ 92% · ~40 s" (⚠️ when it does not deliver well)."""
    text = f"{'✅' if badge.good else '⚠️'} {percent(badge.percent)}"
    if badge.typical_seconds is not None:
        text += f" · {typical_time(badge.typical_seconds)}"
    return text


def best_line(best: Best) -> str:
    """The offers screen's line on its best pick: which offer, and why."""
    badge = best.badge
    picked = best.priced
    offer = {"price": money(picked.display_price), "provider": title(picked.offer.provider)}
    if best.reason is BestReason.DELIVERS_WELL and badge is not None:
        if badge.typical_seconds is None:
            return _(
                "⭐ Best: {price} at {provider}, the cheapest offer that delivers well "
                "({percent} of its recent orders got a code)."
            ).format(percent=percent(badge.percent), **offer)
        return _(
            "⭐ Best: {price} at {provider}, the cheapest offer that delivers well "
            "({percent} of its recent orders got a code, typically in {time})."
        ).format(percent=percent(badge.percent), time=typical_time(badge.typical_seconds), **offer)
    if best.reason is BestReason.LEAST_BAD and badge is not None:
        return _(
            "⭐ Best: {price} at {provider}. No offer delivers well right now; this one got a "
            "code most often ({percent} of its recent orders)."
        ).format(percent=percent(badge.percent), **offer)
    return _(
        "⭐ Best: {price} at {provider}, the cheapest in stock (too few recent orders to tell "
        "how well it delivers)."
    ).format(**offer)


def best_reason(best: Best) -> str:
    """Why the best pick is the best, in one line."""
    badge = best.badge
    if best.reason is BestReason.DELIVERS_WELL and badge is not None:
        if badge.typical_seconds is None:
            return _(
                "⭐ Best pick: the cheapest offer that delivers well: {percent} of its recent "
                "orders got a code."
            ).format(percent=percent(badge.percent))
        return _(
            "⭐ Best pick: the cheapest offer that delivers well: {percent} of its recent "
            "orders got a code, typically in {time}."
        ).format(percent=percent(badge.percent), time=typical_time(badge.typical_seconds))
    if best.reason is BestReason.LEAST_BAD and badge is not None:
        return _(
            "⭐ Best pick: no offer delivers well right now; this one got a code most often "
            "({percent} of its recent orders)."
        ).format(percent=percent(badge.percent))
    return _("⭐ Best pick: the cheapest offer; too few orders yet to tell how well it delivers.")


def _kind_word(value: str) -> str:
    return _("activation") if value == OrderKind.ACTIVATION else _("rental")


def _delivery_row(row: TableRow) -> str:
    ref, figures = row.figures.ref, row.figures
    orders = _("{n} recent order", "{n} recent orders", figures.recent).format(n=figures.recent)
    return (
        f"• {title(ref.provider)} · {escape(identifiers.service_name(ref.service))} · "
        f"{country(ref.country)} · {_kind_word(ref.kind)}: {offer_badge(row.badge)} ({orders})"
    )


def delivery_table(table: DeliveryTable) -> str:
    """For the admins: the offers that deliver best and worst, by their recent orders."""
    if not table.best and not table.worst:
        return _("📊 Delivery: no offer has {n} recent orders yet.").format(n=table.min_samples)
    lines = [
        _("📊 <b>Delivery</b> (offers with at least {n} recent orders)").format(
            n=table.min_samples
        )
    ]
    if table.best:
        lines += ["", _("<b>Best</b>"), *(_delivery_row(row) for row in table.best)]
    if table.worst:
        lines += ["", _("<b>Worst</b>"), *(_delivery_row(row) for row in table.worst)]
    return "\n".join(lines)


def summary_toggle(on: bool) -> str:
    return _("🔔 Daily summary: on") if on else _("🔕 Daily summary: off")


def _summary_time(hour: int) -> str:
    return f"{hour:02d}:00"


def delivery_screen(table: DeliveryTable, summary_on: bool, hour: int) -> str:
    """The delivery table, and whether this admin gets the daily summary."""
    if summary_on:
        setting = _(
            "🔔 You get a daily summary at {time} UTC: yesterday's orders and money, and "
            "these offers."
        )
    else:
        setting = _(
            "🔕 Daily summary: off. Turn it on to get yesterday's orders and money, and these "
            "offers, every day at {time} UTC."
        )
    return f"{delivery_table(table)}\n\n{setting.format(time=_summary_time(hour))}"


def summary_turned(on: bool, hour: int) -> str:
    if on:
        return _("🔔 Daily summary on: every day at {time} UTC.").format(time=_summary_time(hour))
    return _("🔕 Daily summary off.")


def daily_summary(summary: Summary) -> str:
    """The admins' daily summary: the day's orders, codes and money, and the delivery table."""
    stats = summary.stats
    day = format_date(summary.day, "d MMMM y", locale=locale())
    lines = [
        _("📅 <b>Daily summary</b> for {day} (UTC)").format(day=day),
        "",
        _("<b>Orders</b>: {orders} · got a code {coded} ({share})").format(
            orders=orders_count(stats.orders),
            coded=stats.with_code,
            share=f"{stats.code_share:.0%}",
        ),
        _("Revenue from wallets: {amounts}").format(amounts=_amounts(stats.revenue)),
        _("Spent at providers: {amounts}").format(amounts=_amounts(stats.spend)),
        _("<b>Profit</b>: {amounts}").format(amounts=_amounts(stats.profit)),
    ]
    if stats.failed_deliveries:
        lines.append(
            _("⚠️ SMS that Telegram refused to deliver: {n} (see the log)").format(
                n=stats.failed_deliveries
            )
        )
    lines += [
        "",
        delivery_table(summary.table),
        "",
        _("To stop it: /admin → 📊 Delivery."),
    ]
    return "\n".join(lines)


# --- "tell me when" alerts (bot.services.stock_alerts) ---------------------------------------


def alert_button(under: Money | None) -> str:
    if under is None:
        return _("🔔 Notify me when available")
    return _("🔔 Notify me under {price}").format(price=money(under))


def _alert_wish(alert: StockAlert) -> str:
    if alert.max_price is None:
        return _("when numbers are available")
    return _("when an offer is at most {price}").format(price=money(alert.max_price))


def _alert_pair(alert: StockAlert) -> str:
    return _("<b>{service}</b> in {country}").format(
        service=escape(identifiers.service_name(alert.service)), country=country(alert.country)
    )


def alert_created(alert: StockAlert) -> str:
    return _(
        "🔔 Done: I'll tell you once, {wish}, for {service} in {country} (until {until})."
    ).format(
        wish=_alert_wish(alert),
        service=identifiers.service_name(alert.service),
        country=identifiers.country_name(alert.country, locale()),
        until=when(alert.expires_at),
    )


def alert_exists() -> str:
    return _("🔔 You asked for this already: I'll tell you once it happens.")


def alert_too_many(limit: int) -> str:
    return _(
        "You have {n} alert already: remove one in /alerts first.",
        "You have {n} alerts already: remove one in /alerts first.",
        limit,
    ).format(n=limit)


def alerts_list(alerts: list[StockAlert]) -> str:
    if not alerts:
        return _(
            "🔔 You have no alerts. When a country has no numbers, or they cost more than you "
            "like, the offers screen lets you ask to be told once that changes."
        )
    lines = [_("🔔 <b>Your alerts</b>")]
    for place, alert in enumerate(alerts, start=1):
        lines.append(f"{place}. {_alert_pair(alert)}: {_alert_wish(alert)}")
    lines += ["", _("Each one tells you once, then ends. ✖️ removes one.")]
    return "\n".join(lines)


def alert_removed() -> str:
    return _("Alert removed.")


def alert_gone() -> str:
    return _("That alert is no longer there.")


def alert_fired(alert: StockAlert, priced: PricedOffer) -> str:
    offer = priced.offer
    if alert.max_price is None:
        head = _("🔔 {pair}: numbers are available now, {price} at {provider}.")
    else:
        head = _("🔔 {pair}: an offer at {price} at {provider}, within your {limit}.")
    text = head.format(
        pair=_alert_pair(alert),
        price=money(priced.display_price),
        provider=title(offer.provider),
        limit=money(alert.max_price),
    )
    return text + "\n" + _("Tap the offer to buy it: the price is checked again before you pay.")
