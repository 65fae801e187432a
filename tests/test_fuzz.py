"""A seeded fuzz through the real Dispatcher (#10): forged callback data for every CallbackData
prefix, every command with bad arguments, odd message types.

Asserted: no update reaches the last-line error handler or escapes it; nothing of another user
(the victim's order ids with their phone, the victim's SMS) shows in the attacker's chat; no
provider request for a service/country pair the catalog does not sell.

``FUZZ_UPDATES`` (default 2000) and ``FUZZ_SEED`` (default 20261201) change the run.
"""

from __future__ import annotations

import inspect
import os
import random
from pathlib import Path
from typing import Any

import pytest
from aiogram.filters.callback_data import CallbackData
from aiogram.types import Contact, Location, Message, Sticker, Update

from bot import callbacks
from bot.services.catalog import CatalogService
from tests.fakes.telegram import BotClient
from tests.stack import Stack, running_stack

UPDATES = int(os.environ.get("FUZZ_UPDATES", "2000"))
SEED = int(os.environ.get("FUZZ_SEED", "20261201"))
VICTIM, ATTACKER = 1001, 2002
STRANGER = 600_006  # no admin: refused, rate-limited

FACTORIES: list[type[CallbackData]] = [
    cls
    for _, cls in inspect.getmembers(callbacks, inspect.isclass)
    if issubclass(cls, CallbackData) and cls is not CallbackData
]
COMMANDS = [
    "start", "help", "buy", "numbers", "wallet", "language", "admin",
    "user", "block", "unblock", "credit", "debit",
]  # fmt: skip
ODD_INTS = ["0", "-1", "1", str(2**63), str(2**63 - 1), str(2**64), str(-(2**63) - 1),
            "9" * 40, "1e50", "NaN", "Infinity", "-0", "0x10", "١٢", " 1", "1.5", ""]  # fmt: skip
ODD_TEXTS = ["", "NaN", "Infinity", "-Infinity", "🙂" * 12, "x" * 59, "tg", "RU", "ru", "<b>",
             "&amp;", "\u0000", "\u202e", "a:b", "zz", "us", "telegram", "1e50"]  # fmt: skip


def odd_value(rng: random.Random, known: list[str]) -> str:
    pick = rng.random()
    if pick < 0.35:
        return rng.choice(ODD_INTS)
    if pick < 0.65:
        return rng.choice(ODD_TEXTS)
    if pick < 0.85 and known:
        return rng.choice(known)
    size = rng.randint(0, 30)
    return "".join(chr(rng.choice([rng.randint(32, 126), rng.randint(0x400, 0x4FF), 0x1F600]))
                   for _ in range(size))  # fmt: skip


def forged_data(rng: random.Random, known: list[str]) -> str:
    factory = rng.choice(FACTORIES)
    fields = [odd_value(rng, known) for _ in factory.model_fields]
    if rng.random() < 0.1:  # a wrong number of fields
        fields = fields[: rng.randint(0, len(fields))] + ["1"] * rng.randint(0, 2)
    data = ":".join([factory.__prefix__, *fields])
    return data.encode()[:64].decode("utf-8", "ignore")  # Telegram carries at most 64 bytes


def bad_command(rng: random.Random, known: list[str]) -> str:
    args = " ".join(odd_value(rng, known) for _ in range(rng.randint(0, 3)))
    return f"/{rng.choice(COMMANDS)} {args}".strip()


def odd_message(client: BotClient, rng: random.Random) -> Message:
    content: dict[str, Any] = rng.choice(
        [
            {"location": Location(latitude=1.0, longitude=2.0)},
            {"contact": Contact(phone_number="+10000000000", first_name="x")},
            {
                "sticker": Sticker(
                    file_id="s",
                    file_unique_id="s",
                    type="regular",
                    width=1,
                    height=1,
                    is_animated=False,
                    is_video=False,
                )
            },
            {"text": "x" * 4096},
            {"text": "🙂" * 2048},
            {"text": rng.choice(ODD_TEXTS) or "."},
        ]
    )
    return Message(
        message_id=client.api.next_message_id(client.chat.id),
        date=client.api.clock.now(),
        chat=client.chat,
        from_user=client.user,
        **content,
    )


def provider_requests(stack: Stack) -> int:
    return sum(len(server.requests) for server in stack.suite.servers.values())


def pair_of(data: str) -> tuple[str, str] | None:
    """The service/country a PickCountry or OfferKey button names, if it unpacks."""
    for factory in (callbacks.PickCountry, callbacks.OfferKey):
        try:
            unpacked = factory.unpack(data)
        except (TypeError, ValueError):
            continue
        return str(getattr(unpacked, "service")), str(getattr(unpacked, "country"))  # noqa: B009
    return None


async def victims_order(stack: Stack) -> tuple[int, str]:
    victim = stack.client(VICTIM)
    await victim.send("/buy")
    await victim.click(victim.last_message(), "Telegram")
    await victim.click(victim.last_message(), "🇷🇺 Russia")
    await victim.click(victim.last_message(), lambda b: "Get-SMS · activation" in b.text)
    await victim.click(victim.last_message(), "✅ Buy")
    [order] = await stack.app.dp["order_repo"].list_for_user(VICTIM)
    return order.id, order.phone


async def test_fuzz_every_prefix_command_and_message_type(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(SEED)
    async with running_stack(tmp_path, access_mode="public") as stack:
        order_id, phone = await victims_order(stack)
        catalog: CatalogService = stack.app.dp["catalog"]
        attackers = [stack.client(ATTACKER), stack.client(STRANGER)]
        for attacker in attackers:
            await attacker.send("/start")
        known = [str(order_id), str(VICTIM), "tg", "RU"]  # the phone is what must not leak
        escaped: list[str] = []
        forged_pair_calls: list[str] = []
        forged_pairs = 0
        for step in range(UPDATES):
            attacker = attackers[0] if rng.random() < 0.8 else attackers[1]
            kind = rng.random()
            before = provider_requests(stack)
            data = None
            try:
                if kind < 0.6:
                    data = forged_data(rng, known)
                    await attacker.click_data(attacker.last_message(), data, allow_unhandled=True)
                elif kind < 0.9:
                    await attacker.send(bad_command(rng, known), allow_unhandled=True)
                else:
                    message = odd_message(attacker, rng)
                    update = Update(update_id=attacker.api.next_update_id(), message=message)
                    await attacker.dp.feed_update(attacker.bot, update)
            except Exception as exc:  # every escape is a finding
                escaped.append(f"step {step} {data!r}: {type(exc).__name__}: {exc}")
            pair = pair_of(data) if data else None
            if pair is not None and not await catalog.sells(*pair):
                forged_pairs += 1
                if provider_requests(stack) > before:
                    forged_pair_calls.append(f"{data!r}: {provider_requests(stack) - before}")

        errors = [r.getMessage() for r in caplog.records if r.name == "bot.handlers.errors"]
        shown = [m.text or m.caption or "" for a in attackers for m in a.messages()]
        shown += [answer or "" for a in attackers for answer in a.answers()]
        # ATTACKER is an admin: the victim's card from /user (an operator's tool) may show the
        # number; nothing else may, to anyone.
        entitled = f"· id {VICTIM}\n"
        leaked = [
            t
            for t in shown
            if (phone in t or phone[-7:] in t.replace(" ", "")) and entitled not in t
        ]
        assert escaped == [], escaped[:5]
        assert errors == [], errors[:5]
        assert leaked == [], leaked[:3]
        assert forged_pair_calls == [], forged_pair_calls[:5]
        assert forged_pairs >= UPDATES // 100  # the fuzz did forge pairs
