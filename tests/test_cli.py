"""The operator CLI (``python -m bot doctor`` / ``offers``) run as a real subprocess.

Every run talks to the four provider emulators over HTTP. The emulators serve on this test's
event loop, so the CLI is started with ``asyncio.create_subprocess_exec`` (never a blocking
``subprocess.run``) and every wait is bounded. Each run also checks that no secret (the emulator
keys, the bot token, a wrong key) appears on stdout or stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from bot.cli import UsageError, resolve_country, resolve_service
from bot.config import Settings
from bot.providers.registry import PROVIDER_IDS, PROVIDER_TITLES
from tests.emulators.suite import EmulatorSuite
from tests.fakes.bot_server import FakeBotServer
from tests.services import fresh_postgres_schema, require_redis

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT = 60.0
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_"
WRONG_GETSMS_KEY = "wrong-getsms-key-5f0c2a"
JSON_KEYS = {
    "provider",
    "kind",
    "duration_hours",
    "price",
    "currency",
    "display_price",
    "display_currency",
    "stock",
}
ROW_NAMES = ("bot token", "admins", "database", "providers", *PROVIDER_TITLES.values(), "prices")
DOCTOR_ROW = re.compile(
    rf"^(OK|WARN|FAIL)\s+({'|'.join(map(re.escape, (*ROW_NAMES, 'redis')))})\s+(.*)$"
)
# Secret settings are preset blank (= unset), the rest to their defaults, so that neither the
# caller's environment nor a ``.env`` found by ``load_dotenv`` (it searches from the package's
# folder, not the working directory) can leak into a run: it never overrides a variable set.
PINNED_SETTINGS = {
    "BOT_TOKEN": "",
    "TELEGRAM_API_URL": "",
    "GETSMS_API_KEY": "",
    "SMSBUS_TOKEN": "",
    "BEESMS_TOKEN": "",
    "SMSONLINE_API_KEY": "",
    "ADMIN_IDS": "",
    "DISPLAY_CURRENCY": "USD",
    "EXCHANGE_RATES": "",
    "GETSMS_CURRENCY": "USD",
    "SMSONLINE_CURRENCY": "USD",
    "PROVIDER_TIMEOUT": "10",
    "PROVIDER_RETRIES": "3",
}


@dataclass(frozen=True, slots=True)
class Run:
    code: int
    out: str
    err: str


class Cli:
    """Runs ``python -m bot`` against the emulators with a clean environment."""

    def __init__(self, suite: EmulatorSuite, workdir: Path, telegram: FakeBotServer) -> None:
        self.suite = suite
        self.telegram = telegram  # doctor asks it getMe (never the real Telegram)
        self.workdir = workdir
        self.db_path = workdir / "data" / "bot.sqlite3"
        keys = [v for k, v in suite.env().items() if not k.endswith(("_BASE_URL", "_CURRENCY"))]
        self.secrets = [*keys, BOT_TOKEN, WRONG_GETSMS_KEY]

    def env(self, extra: Mapping[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
        env.update(PINNED_SETTINGS)
        env.update(self.suite.env())
        env["TELEGRAM_API_URL"] = self.telegram.base_url
        env["DATABASE_PATH"] = str(self.db_path)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p
        )
        env.update(extra)
        return env

    async def __call__(self, *args: str, **extra: str) -> Run:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            *args,
            cwd=self.workdir,
            env=self.env(extra),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        run = Run(proc.returncode, out.decode(), err.decode())
        for secret in self.secrets:
            assert secret not in run.out, f"a secret leaked to stdout: {run.out}"
            assert secret not in run.err, f"a secret leaked to stderr: {run.err}"
        return run


@pytest.fixture
async def suite() -> AsyncIterator[EmulatorSuite]:
    suite = EmulatorSuite()
    await suite.start()
    try:
        yield suite
    finally:
        await suite.stop()


@pytest.fixture
async def cli(suite: EmulatorSuite, tmp_path: Path) -> AsyncIterator[Cli]:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    telegram = FakeBotServer()
    await telegram.start()
    try:
        yield Cli(suite, workdir, telegram)
    finally:
        await telegram.stop()


def total_requests(suite: EmulatorSuite) -> int:
    return sum(len(server.requests) for server in suite.servers.values())


def parse_offers_json(run: Run) -> list[dict[str, object]]:
    data = json.loads(run.out)
    assert isinstance(data, list)
    for item in data:
        assert isinstance(item, dict)
        assert set(item) == JSON_KEYS
    return data


def dec(value: object) -> Decimal:
    assert isinstance(value, str), f"not a decimal string: {value!r}"
    return Decimal(value)


def doctor_rows(run: Run) -> dict[str, tuple[str, str]]:
    """name -> (OK|FAIL, detail); every stdout line must be a row."""
    rows: dict[str, tuple[str, str]] = {}
    for line in run.out.splitlines():
        match = DOCTOR_ROW.match(line)
        assert match, f"not a doctor row: {line!r}"
        status, name, detail = match.groups()
        assert name not in rows, f"two rows for {name}"
        rows[name] = (status, detail)
    return rows


# --- offers ---------------------------------------------------------------------------------


async def test_offers_json_lists_every_provider_cheapest_first(cli: Cli) -> None:
    run = await cli("offers", "tg", "US", "--json")

    assert run.code == 0, run.err
    assert run.err == ""
    offers = parse_offers_json(run)
    assert {o["provider"] for o in offers} == set(PROVIDER_IDS)
    prices = [dec(o["display_price"]) for o in offers]
    assert prices == sorted(prices)
    for o in offers:
        assert o["kind"] in ("activation", "rental")
        if o["kind"] == "activation":
            assert o["duration_hours"] is None
        else:
            assert isinstance(o["duration_hours"], int)
            assert o["duration_hours"] > 0
        assert o["currency"] == "USD"
        assert o["display_currency"] == "USD"
        assert dec(o["display_price"]) == dec(o["price"])  # same currency: no conversion
        assert o["stock"] is None or (isinstance(o["stock"], int) and o["stock"] > 0)
    # Seeded: Get-SMS sells a US virtual Telegram activation for 0.40, the cheapest of all.
    assert (offers[0]["provider"], offers[0]["kind"], dec(offers[0]["price"])) == (
        "getsms",
        "activation",
        Decimal("0.40"),
    )
    assert {(o["provider"], o["duration_hours"]) for o in offers if o["kind"] == "rental"} >= {
        ("beesms", 168),
        ("beesms", 720),
        ("smsonline", 4),
        ("getsms", 24),
    }


async def test_offers_table_matches_json(cli: Cli) -> None:
    table, as_json = await cli("offers", "tg", "US"), await cli("offers", "tg", "US", "--json")

    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert lines[0] == "Telegram in United States (US), cheapest first:"
    assert re.split(r"\s{2,}", lines[1].strip()) == [
        "provider",
        "kind",
        "price",
        "display",
        "stock",
    ]
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[2:]]
    assert len(rows) == len(parse_offers_json(as_json))
    assert {r[0] for r in rows} == set(PROVIDER_TITLES.values())
    shown = [Decimal(r[3].removesuffix(" USD")) for r in rows]
    assert shown == sorted(shown)
    assert rows[0] == ["Get-SMS", "activation", "0.40 USD", "0.40 USD", "20"]
    assert ["BEE-SMS", "rental 7d", "4.9 USD", "4.90 USD", "10"] in rows
    assert ["SMS.online", "rental 4h", "1.2 USD", "1.20 USD", "25"] in rows


async def test_service_and_country_names_resolve(cli: Cli) -> None:
    by_code = await cli("offers", "tg", "US", "--json")
    by_name = await cli("offers", "Telegram", "United States", "--json")
    by_folded_name = await cli("offers", "telegram", "united states")

    assert by_name.code == 0, by_name.err
    assert parse_offers_json(by_name) == parse_offers_json(by_code)
    assert by_folded_name.code == 0, by_folded_name.err
    assert by_folded_name.out.startswith("Telegram in United States (US), cheapest first:\n")


@pytest.mark.parametrize(
    ("service", "country", "message"),
    [
        ("nosuchservice", "US", "unknown service 'nosuchservice'"),
        ("tg", "Atlantis", "unknown country 'Atlantis'"),
        ("tg", "Korea", "country 'Korea' is ambiguous"),
    ],
)
async def test_unknown_service_or_country_is_a_clear_error(
    cli: Cli, suite: EmulatorSuite, service: str, country: str, message: str
) -> None:
    run = await cli("offers", service, country, "--json")

    assert run.code == 2
    assert run.out == ""
    assert run.err.startswith(f"error: {message}")
    assert "Traceback" not in run.err
    assert total_requests(suite) == 0  # nothing was asked of any provider


async def test_exchange_rates_put_offers_on_the_display_scale(cli: Cli) -> None:
    run = await cli(
        "offers", "tg", "US", "--json", GETSMS_CURRENCY="RUB", EXCHANGE_RATES="RUB=0.011"
    )

    assert run.code == 0, run.err
    offers = parse_offers_json(run)
    getsms = [o for o in offers if o["provider"] == "getsms"]
    assert getsms
    for o in getsms:
        assert (o["currency"], o["display_currency"]) == ("RUB", "USD")
        expected = (dec(o["price"]) * Decimal("0.011")).quantize(Decimal("0.0001"))
        assert dec(o["display_price"]) == expected
    # 13.00 RUB (the 7-day rental) is 0.143 USD: cheaper than SMS-BUS's 1.10 USD activation.
    week = next(o for o in getsms if o["duration_hours"] == 168)
    assert dec(week["display_price"]) == Decimal("0.1430")
    smsbus = next(o for o in offers if o["provider"] == "smsbus")
    assert offers.index(week) < offers.index(smsbus)
    prices = [dec(o["display_price"]) for o in offers]
    assert prices == sorted(prices)


async def test_display_currency_other_than_usd(cli: Cli) -> None:
    run = await cli(
        "offers",
        "tg",
        "US",
        "--json",
        DISPLAY_CURRENCY="RUB",
        GETSMS_CURRENCY="RUB",
        EXCHANGE_RATES="USD=90",
    )

    assert run.code == 0, run.err
    offers = parse_offers_json(run)
    assert {o["display_currency"] for o in offers} == {"RUB"}
    for o in offers:
        rate = Decimal(1) if o["currency"] == "RUB" else Decimal(90)
        assert dec(o["display_price"]) == dec(o["price"]) * rate
    smsbus = next(o for o in offers if o["provider"] == "smsbus")
    assert (smsbus["price"], smsbus["currency"], dec(smsbus["display_price"])) == (
        "1.1",
        "USD",
        Decimal(99),
    )


async def test_missing_exchange_rate_is_reported_not_taken_as_one_to_one(cli: Cli) -> None:
    run = await cli("offers", "tg", "US", "--json", GETSMS_CURRENCY="RUB")

    assert run.code == 0  # the others still answered
    offers = parse_offers_json(run)
    assert {o["provider"] for o in offers} == {"smsbus", "beesms", "smsonline"}
    assert "Get-SMS: failed: no exchange rate for RUB -> USD" in run.err
    assert "EXCHANGE_RATES" in run.err


async def test_one_failing_provider_is_named_and_the_others_still_print(
    cli: Cli, suite: EmulatorSuite
) -> None:
    suite.smsbus.fail("5xx", times=10)  # more than every attempt the adapter makes

    run = await cli("offers", "tg", "US", "--json", PROVIDER_RETRIES="2")

    first, second, *_ = suite.smsbus.requests
    assert first == second  # the failed read was retried, and failed again
    failed = [line for line in run.err.splitlines() if ": failed: " in line]
    assert failed == [
        "SMS-BUS: failed: smsbus: ProviderUnavailable: server error "
        "(HTTP 502: '<html>502 Bad Gateway</html>')"
    ]
    offers = parse_offers_json(run)
    assert {o["provider"] for o in offers} == {"getsms", "beesms", "smsonline"}
    # bot/cli.py: exit 1 only when providers failed and nothing at all could be listed.
    assert run.code == 0


async def test_one_failing_provider_in_table_output(cli: Cli, suite: EmulatorSuite) -> None:
    suite.beesms.fail("5xx", times=1)

    run = await cli("offers", "tg", "US", PROVIDER_RETRIES="1")

    assert run.code == 0
    assert "BEE-SMS: failed: beesms: ProviderUnavailable" in run.err
    assert "BEE-SMS" not in run.out
    assert {"Get-SMS", "SMS-BUS", "SMS.online"} <= set(run.out.split())


async def test_every_provider_down_exits_1(cli: Cli, suite: EmulatorSuite) -> None:
    await suite.stop()

    run = await cli("offers", "tg", "US", "--json", PROVIDER_RETRIES="1")

    assert run.code == 1
    assert json.loads(run.out) == []
    for title in PROVIDER_TITLES.values():
        assert f"{title}: failed: " in run.err
    assert "cannot connect" in run.err


async def test_no_offers_is_not_a_failure(cli: Cli) -> None:
    run = await cli("offers", "vk", "US")  # a known service nobody sells there

    assert (run.code, run.out, run.err) == (0, "no offers for vk in US\n", "")


# --- doctor ---------------------------------------------------------------------------------


async def test_doctor_fails_without_bot_token(cli: Cli) -> None:
    run = await cli("doctor")

    assert run.code == 1
    rows = doctor_rows(run)
    assert set(rows) == set(ROW_NAMES)  # one row per check
    assert rows["bot token"][0] == "FAIL"
    assert "BOT_TOKEN is missing" in rows["bot token"][1]
    assert [name for name, (status, _) in rows.items() if status == "FAIL"] == ["bot token"]


async def test_doctor_all_good(cli: Cli) -> None:
    run = await cli("doctor", BOT_TOKEN=BOT_TOKEN)

    assert run.code == 0, run.out + run.err
    rows = doctor_rows(run)
    assert set(rows) == set(ROW_NAMES)
    assert all(status == "OK" for name, (status, _) in rows.items() if name != "admins")
    assert rows["bot token"] == ("OK", "accepted by Telegram: @numbers_bot")  # getMe
    assert rows["admins"][0] == "WARN" and "ADMIN_IDS is empty" in rows["admins"][1]
    assert rows["database"] == ("OK", str(cli.db_path))
    assert cli.db_path.is_file()  # the folder was created and the file opened
    assert rows["providers"][1] == ", ".join(PROVIDER_TITLES.values())
    assert rows["Get-SMS"][1].startswith("key accepted; balance 100.00 USD (in GETSMS_CURRENCY")
    assert rows["prices"][0] == "OK"
    assert rows["SMS-BUS"][1] == "key accepted; balance 10.00 USD"
    assert rows["SMS.online"][1] == "key accepted; balance 100.00 USD"
    assert rows["BEE-SMS"][1] == "key accepted; balance 1000.00 USD"  # /v1/user/balance


async def test_doctor_flags_a_misstated_provider_currency(cli: Cli) -> None:
    # The emulated Get-SMS account is in USD; an operator who states RUB makes every Get-SMS
    # price about 90x too low next to the other providers': doctor says so.
    run = await cli(
        "doctor", BOT_TOKEN=BOT_TOKEN, GETSMS_CURRENCY="RUB", EXCHANGE_RATES="RUB=0.011"
    )

    assert run.code == 1
    rows = doctor_rows(run)
    assert rows["Get-SMS"][1].startswith("key accepted; balance 100.00 RUB")
    status, detail = rows["prices"]
    assert status == "FAIL"
    assert "getsms tg/RU activation: 0.01 USD, 45x below smsbus's 0.25 USD" in detail
    assert "GETSMS_CURRENCY" in detail


async def test_doctor_wrong_key_is_a_fail_row(cli: Cli) -> None:
    run = await cli("doctor", BOT_TOKEN=BOT_TOKEN, GETSMS_API_KEY=WRONG_GETSMS_KEY)

    assert run.code == 1
    rows = doctor_rows(run)
    assert [name for name, (status, _) in rows.items() if status == "FAIL"] == ["Get-SMS"]
    assert rows["Get-SMS"][1].startswith("BadCredentials")


async def test_doctor_unreachable_provider_is_a_fail_row(cli: Cli, suite: EmulatorSuite) -> None:
    suite.smsonline.fail("5xx", times=1)

    run = await cli("doctor", BOT_TOKEN=BOT_TOKEN, PROVIDER_RETRIES="1")

    assert run.code == 1
    rows = doctor_rows(run)
    assert [name for name, (status, _) in rows.items() if status == "FAIL"] == ["SMS.online"]
    assert rows["SMS.online"][1].startswith("ProviderUnavailable")


async def test_doctor_missing_exchange_rate_is_a_fail_row(cli: Cli) -> None:
    run = await cli("doctor", BOT_TOKEN=BOT_TOKEN, SMSONLINE_CURRENCY="EUR")

    assert run.code == 1
    rows = doctor_rows(run)
    assert [name for name, (status, _) in rows.items() if status == "FAIL"] == ["SMS.online"]
    assert rows["SMS.online"][1].startswith("no exchange rate for EUR -> USD")


async def test_doctor_unusable_database_path(cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")

    run = await cli("doctor", BOT_TOKEN=BOT_TOKEN, DATABASE_PATH=str(blocker / "bot.sqlite3"))

    assert run.code == 1
    rows = doctor_rows(run)
    assert [name for name, (status, _) in rows.items() if status == "FAIL"] == ["database"]


async def test_doctor_with_no_provider_enabled(cli: Cli) -> None:
    run = await cli(
        "doctor",
        BOT_TOKEN=BOT_TOKEN,
        GETSMS_API_KEY="",
        SMSBUS_TOKEN="",
        BEESMS_TOKEN="",
        SMSONLINE_API_KEY="",
    )

    assert run.code == 1
    rows = doctor_rows(run)
    assert set(rows) == {"bot token", "admins", "database", "providers"}
    assert rows["providers"] == ("FAIL", "none enabled: set at least one provider key")


async def test_malformed_bot_token_is_not_echoed(cli: Cli) -> None:
    malformed = "12345:short-but-secret-token-value"
    cli.secrets.append(malformed)

    run = await cli("doctor", BOT_TOKEN=malformed)

    assert run.code == 2
    assert run.out == ""
    assert "BOT_TOKEN: does not look like a bot token" in run.err


# --- resolving what the operator typed -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("tg", "tg"),
        (" TG ", "tg"),
        ("Telegram", "tg"),
        ("telegram", "tg"),
        ("wapp", "wa"),  # a provider's alias
        ("WhatsApp", "wa"),
        ("PayPal", "ts"),
        ("Google", "go"),
        ("whatsap", "wa"),  # the only partial match
    ],
)
def test_resolve_service(text: str, code: str) -> None:
    assert resolve_service(text) == code


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nosuchservice", "unknown service 'nosuchservice'"),
        ("", "unknown service ''"),
        ("goo", "service 'goo' is ambiguous: go (Google"),
    ],
)
def test_resolve_service_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        resolve_service(text)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("US", "US"),
        (" us ", "US"),
        ("United States", "US"),
        ("united states", "US"),
        ("GB", "GB"),
        ("United Kingdom", "GB"),
        ("Germany", "DE"),
        ("Germ", "DE"),  # the only partial match
        ("cote d’ivoire", "CI"),  # accents folded
    ],
)
def test_resolve_country(text: str, iso: str) -> None:
    assert resolve_country(text) == iso


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Atlantis", "unknown country 'Atlantis'"),
        ("", "unknown country ''"),
        ("Korea", "country 'Korea' is ambiguous: KP (North Korea), KR (South Korea)"),
    ],
)
def test_resolve_country_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        resolve_country(text)
    assert str(caught.value).startswith(message)


def test_two_letter_non_code_is_not_a_substring_match() -> None:
    assert resolve_country("UK") == "GB"  # an alias people type
    assert resolve_country("usa") == "US"
    with pytest.raises(UsageError, match="unknown country"):
        resolve_country("ZZ")  # not Congo, though "Congo - Brazzaville" contains "zz"


async def test_doctor_checks_postgresql_and_redis_without_showing_their_urls(cli: Cli) -> None:
    redis_url = require_redis()
    async with fresh_postgres_schema() as database_url:
        run = await cli(
            "doctor", BOT_TOKEN=BOT_TOKEN, DATABASE_URL=database_url, REDIS_URL=redis_url
        )
        rows = doctor_rows(run)
        assert rows["database"][0] == "OK" and "(schema v13)" in rows["database"][1]
        assert rows["redis"] == ("OK", "answers (keys under smsbot:)")
        assert not cli.db_path.exists()  # PostgreSQL, not the SQLite file

        down = await cli(
            "doctor", BOT_TOKEN=BOT_TOKEN, DATABASE_URL=database_url,
            REDIS_URL="redis://:hunter2secret@127.0.0.1:1/0",
        )  # fmt: skip
        assert down.code == 1
        assert doctor_rows(down)["redis"][0] == "FAIL"
        assert "hunter2secret" not in down.out + down.err
