"""Labels people read: the cancel button under each provider rule, countdowns, and every Russian
plural of the offers line (EN and RU)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot import texts
from bot.domain import CancelBlock, CancelTerms, RefundScope
from bot.i18n import create_i18n

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("terms", "en", "ru"),
    [
        (CancelTerms(None, RefundScope.ALL), "✖️ Cancel", "✖️ Отменить"),
        (
            CancelTerms(None, RefundScope.NONE),
            "✖️ Cancel (no refund)",
            "✖️ Отменить (без возврата)",
        ),
        (
            CancelTerms(
                CancelBlock.TOO_EARLY, RefundScope.ALL, opens_at=NOW + timedelta(seconds=100)
            ),
            "⏳ Cancel possible in 1 min 40 s",
            "⏳ Отмена возможна через 1 мин 40 с",
        ),
        (CancelTerms(CancelBlock.SMS_RECEIVED, RefundScope.NONE), None, None),
        (CancelTerms(CancelBlock.TOO_LATE, RefundScope.NONE), None, None),
    ],
    ids=["refund", "no-refund", "too-early", "sms", "too-late"],
)
def test_the_cancel_button_says_what_a_cancel_would_do(
    terms: CancelTerms, en: str | None, ru: str | None
) -> None:
    i18n = create_i18n()
    for locale, expected in (("en", en), ("ru", ru)):
        with i18n.context(), i18n.use_locale(locale):
            assert texts.cancel_button(terms, NOW) == expected


def test_countdowns_read_as_time() -> None:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("en"):
        assert texts.countdown(14_340) == "3 h 59 min"
        assert texts.countdown(100) == "1 min 40 s"
        assert texts.countdown(9) == "9 s"
        assert texts.countdown(-5) == "0 s"


@pytest.mark.parametrize(
    ("n", "ru"),
    [
        (1, "1 предложение."),
        (2, "2 предложения, сначала самые дешёвые."),
        (5, "5 предложений, сначала самые дешёвые."),
        (11, "11 предложений, сначала самые дешёвые."),
        (21, "21 предложение, сначала самые дешёвые."),
        (31, "31 предложение, сначала самые дешёвые."),
        (42, "42 предложения, сначала самые дешёвые."),
    ],
)
def test_every_russian_plural_of_the_offers_line_says_cheapest_first(n: int, ru: str) -> None:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale("ru"):
        assert texts.offers("Telegram", "US", n, []).endswith(ru)
    with i18n.context(), i18n.use_locale("en"):
        english = texts.offers("Telegram", "US", n, [])
    assert english.endswith("1 offer." if n == 1 else f"{n} offers, cheapest first.")
