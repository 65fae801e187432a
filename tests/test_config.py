from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from bot.config import SettingsError, load_settings

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in [
        "BOT_TOKEN",
        "GETSMS_API_KEY",
        "SMSBUS_TOKEN",
        "BEESMS_TOKEN",
        "SMSONLINE_API_KEY",
        "EXCHANGE_RATES",
        "ADMIN_IDS",
        "DISPLAY_CURRENCY",
        "GETSMS_CURRENCY",
        "TELEGRAM_API_URL",
    ]:
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.display_currency == "USD"
    assert str(settings.database_path) == "data/bot.sqlite3"
    assert settings.getsms_base_url == "https://get-sms.com"
    assert settings.exchange_rates == {}
    assert settings.bot_token is None


def test_values_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("ADMIN_IDS", "1, 22,333")
    monkeypatch.setenv("EXCHANGE_RATES", "rub=0.011,EUR=1.08")
    monkeypatch.setenv("GETSMS_BASE_URL", "http://127.0.0.1:9999/")
    monkeypatch.setenv("SMSBUS_TOKEN", "  ")
    settings = load_settings()
    assert settings.admin_ids == {1, 22, 333}
    assert settings.exchange_rates == {"RUB": Decimal("0.011"), "EUR": Decimal("1.08")}
    assert settings.getsms_base_url == "http://127.0.0.1:9999"
    assert settings.smsbus_token is None  # blank means disabled
    assert TOKEN not in repr(settings)
    # The token and what is derived from it: the Telegram webhook's header, the pushes' key.
    telegram = settings.telegram_secret_token()
    assert settings.secrets() == (TOKEN, telegram, settings.webhook_secret())


def test_env_file_is_read(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ".env").write_text(
        "DISPLAY_CURRENCY=eur\nGETSMS_API_KEY=abc\nGETSMS_CURRENCY=rub\n"
    )
    settings = load_settings()
    assert settings.display_currency == "EUR"
    assert settings.getsms_api_key is not None
    assert settings.getsms_currency == "RUB"


@pytest.mark.parametrize("currency", [None, "", "  "])
def test_getsms_key_without_its_currency_is_refused(
    monkeypatch: pytest.MonkeyPatch, currency: str | None
) -> None:
    # The docs leave the Get-SMS account currency uncertain: no silent default.
    monkeypatch.setenv("GETSMS_API_KEY", "abc")
    if currency is not None:
        monkeypatch.setenv("GETSMS_CURRENCY", currency)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "GETSMS_CURRENCY is required when GETSMS_API_KEY is set" in str(caught.value)
    assert "abc" not in str(caught.value)


def test_getsms_currency_alone_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().getsms_currency is None
    monkeypatch.setenv("GETSMS_CURRENCY", "usd")
    assert load_settings().getsms_currency == "USD"


def test_every_bad_value_is_named_and_no_secret_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", "not-a-token-supersecret")
    monkeypatch.setenv("ADMIN_IDS", "12,abc")
    monkeypatch.setenv("EXCHANGE_RATES", "RUB=zero")
    monkeypatch.setenv("DISPLAY_CURRENCY", "dollars")
    monkeypatch.setenv("SMSONLINE_BASE_URL", "ftp://x")
    with pytest.raises(SettingsError) as info:
        load_settings()
    text = str(info.value)
    for name in (
        "BOT_TOKEN",
        "ADMIN_IDS",
        "EXCHANGE_RATES",
        "DISPLAY_CURRENCY",
        "SMSONLINE_BASE_URL",
    ):
        assert name in text
    assert "supersecret" not in text


@pytest.mark.parametrize("rates", ["RUB", "RUB=-1", "RUBLE=1", "RUB=nan"])
def test_bad_exchange_rates(monkeypatch: pytest.MonkeyPatch, rates: str) -> None:
    monkeypatch.setenv("EXCHANGE_RATES", rates)
    with pytest.raises(SettingsError, match="EXCHANGE_RATES"):
        load_settings()


def test_delivery_and_money_settings_parse_with_clear_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RENTAL_REMINDERS", "1h, 2d,30m,1h")
    monkeypatch.setenv("AUTO_RENEW_BEFORE", "45m")
    monkeypatch.setenv("LOW_BALANCE_ALERT", "getsms=5, SMSONLINE=2.5")
    monkeypatch.setenv("ACCESS_MODE", "public")
    settings = load_settings()
    assert settings.rental_reminders == (
        timedelta(days=2),
        timedelta(hours=1),
        timedelta(minutes=30),
    )
    assert settings.auto_renew_before == timedelta(minutes=45)
    assert settings.low_balance_alert == {"getsms": Decimal(5), "smsonline": Decimal("2.5")}
    assert settings.wallets_on

    monkeypatch.setenv("RENTAL_REMINDERS", "1w")
    monkeypatch.setenv("LOW_BALANCE_ALERT", "nobody=5")
    monkeypatch.setenv("ACCESS_MODE", "everyone")
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "RENTAL_REMINDERS: bad duration: a positive number with s, m, h or d" in message
    assert "LOW_BALANCE_ALERT: bad item #1: expected KEY=number" in message
    assert "ACCESS_MODE" in message
    assert "1w" not in message and "nobody" not in message


KEY_LIKE = "sk_live_51HqLyjWDarjtT1zdp7dcXY"


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("EXCHANGE_RATES", KEY_LIKE),  # a provider key pasted into the wrong setting
        ("EXCHANGE_RATES", f"RUB={KEY_LIKE}"),
        ("LOW_BALANCE_ALERT", KEY_LIKE),
        ("RENTAL_REMINDERS", KEY_LIKE),
        ("AUTO_RENEW_BEFORE", KEY_LIKE),
        ("ADMIN_IDS", KEY_LIKE),
        ("DISPLAY_CURRENCY", KEY_LIKE),
        ("ACCESS_MODE", KEY_LIKE),
        ("PROVIDER_TIMEOUT", KEY_LIKE),
        ("WEBHOOK_BASE_URL", KEY_LIKE),
        ("BOT_TOKEN", KEY_LIKE),
        ("ADMIN_CREDIT_MAX", KEY_LIKE),
        ("RATE_LIMIT_COUNT", KEY_LIKE),
    ],
)
def test_a_settings_error_names_the_setting_never_the_value(
    monkeypatch: pytest.MonkeyPatch, setting: str, value: str
) -> None:
    monkeypatch.setenv(setting, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    text = str(info.value)
    assert f"{setting}: " in text
    assert KEY_LIKE not in text and KEY_LIKE[:12] not in text
    assert len(text.splitlines()) == 2  # the heading and this setting's line


def test_admin_credit_max_and_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.admin_credit_max == Decimal(10_000)
    assert (settings.rate_limit_count, settings.rate_limit_window) == (30, 10.0)
    monkeypatch.setenv("ADMIN_CREDIT_MAX", "250.5")
    monkeypatch.setenv("RATE_LIMIT_COUNT", "0")
    settings = load_settings()
    assert settings.admin_credit_max == Decimal("250.5")
    assert settings.rate_limit_count == 0
    for bad in ("0", "-1", "NaN", "Infinity"):
        monkeypatch.setenv("ADMIN_CREDIT_MAX", bad)
        with pytest.raises(SettingsError, match="ADMIN_CREDIT_MAX"):
            load_settings()
