"""The identifier tables: every provider id in the docs maps to a real country, names from CLDR."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.providers import identifiers

DOCS = Path(__file__).resolve().parents[2] / "shared" / "provider-docs"


def _getsms_doc_rows() -> list[tuple[str, str, str]]:
    text = (DOCS / "get-sms.txt").read_text()
    block = text.split("List of countries")[-1].split("List of services")[0]
    rows = []
    for line in block.strip().splitlines()[1:]:
        match = re.match(r"^(\S+)\s+(.+?)\s+(\d+)$", line.strip())
        if match:
            slug, name, compat_id = match.groups()
            rows.append((slug, name, compat_id))
    return rows


GETSMS_ROWS = _getsms_doc_rows() if DOCS.exists() else []
SPOT_CHECKS = {
    "ru": "RU",
    "england": "GB",
    "ssha": "US",
    "usavirt": "US",
    "kitai": "CN",
    "salvador": "SV",
    "chili": "CL",
    "demkongo": "CD",
    "kongo": "CG",
    "kotdivuar": "CI",
    "oae": "AE",
    "saudaraviia": "SA",
    "iuzhnaiakoreia": "KR",
    "taivan": "TW",
}


def test_the_table_covers_every_getsms_country_in_the_docs() -> None:
    if not GETSMS_ROWS:
        pytest.skip("provider docs not present beside the repository")
    table = identifiers.getsms_countries()
    sa = identifiers.sms_activate_countries()
    assert len(GETSMS_ROWS) >= 130
    for slug, _name, compat_id in GETSMS_ROWS:
        assert identifiers.is_country(table[slug]), slug
        assert sa[compat_id] == table[slug], (slug, compat_id)


@pytest.mark.parametrize(("slug", "iso"), sorted(SPOT_CHECKS.items()))
def test_getsms_slugs_known_by_hand(slug: str, iso: str) -> None:
    assert identifiers.getsms_countries()[slug] == iso


def test_sms_activate_ids_follow_the_standard_numbering() -> None:
    sa = identifiers.sms_activate_countries()
    assert (sa["0"], sa["1"], sa["16"], sa["187"], sa["12"], sa["22"], sa["21"]) == (
        "RU",
        "UA",
        "GB",
        "US",
        "US",
        "IN",
        "EG",
    )
    assert all(identifiers.is_country(iso) for iso in sa.values())


def test_smsbus_ids() -> None:
    bus = identifiers.smsbus_countries()
    assert (bus["1"], bus["5"], bus["25"], bus["194"], bus["32"]) == ("RU", "US", "GB", "PS", "LA")
    assert all(identifiers.is_country(iso) for iso in bus.values())


def test_two_getsms_slugs_for_the_usa() -> None:
    assert sorted(identifiers.reverse(identifiers.getsms_countries())["US"]) == ["ssha", "usavirt"]


def test_beesms_areas() -> None:
    assert identifiers.beesms_area_to_iso("us") == "US"
    assert identifiers.beesms_area_to_iso("uk") == "GB"
    assert identifiers.beesms_area_to_iso("zz") is None


def test_services_aliases_and_names() -> None:
    assert identifiers.canonical_service("wapp") == "wa"
    assert identifiers.canonical_service("VBR") == "vi"
    assert identifiers.service_name("wa") == "WhatsApp"
    assert identifiers.find_services("whats")[0] == "wa"
    assert identifiers.find_services("Telegram")[0] == "tg"
    assert identifiers.popular_services()[:2] == ("tg", "wa")


def test_country_names_and_flags_come_from_cldr() -> None:
    assert identifiers.country_name("US", "en") == "United States"
    assert identifiers.country_name("DE", "ru") == "Германия"
    assert identifiers.flag("US") == "\U0001f1fa\U0001f1f8"
    assert identifiers.find_countries("indo") == ["ID"]
    assert {"US", "GB", "AE"} <= set(identifiers.find_countries("united"))
    assert "UN" not in identifiers.find_countries("united")
    assert identifiers.find_countries("герм", ("ru",)) == ["DE"]
