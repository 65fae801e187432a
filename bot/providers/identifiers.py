"""Canonical identifiers: services (SMS-Activate codes) and countries (ISO 3166-1 alpha-2).

The provider-specific tables are data files in ``data/``; display names of countries come from
Babel (CLDR), flags are derived from the ISO code. Adapters use the ``*_countries`` tables to map
their own ids; nothing else should need them.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType

from babel import Locale, UnknownLocaleError


def _load(name: str) -> dict[str, object]:
    raw = resources.files("bot.providers").joinpath("data", name).read_text("utf-8")
    data = json.loads(raw)
    assert isinstance(data, dict)
    return data


def _str_map(data: object) -> Mapping[str, str]:
    assert isinstance(data, dict)
    return MappingProxyType({str(k): str(v) for k, v in data.items() if not k.startswith("_")})


@cache
def getsms_countries() -> Mapping[str, str]:
    """Get-SMS native slug (``ru``, ``ssha``, ``usavirt``) -> ISO code."""
    return _str_map(_load("getsms_countries.json"))


@cache
def sms_activate_countries() -> Mapping[str, str]:
    """SMS-Activate numeric country id (as a string) -> ISO code."""
    return _str_map(_load("sms_activate_countries.json"))


@cache
def smsbus_countries() -> Mapping[str, str]:
    """SMS-BUS numeric ``country_id`` (a string) -> ISO code, for when the API omits it."""
    return _str_map(_load("smsbus_countries.json"))


@cache
def beesms_area_aliases() -> Mapping[str, str]:
    return _str_map(_load("beesms_areas.json")["aliases"])


def beesms_area_to_iso(area: str) -> str | None:
    """BEE-SMS area codes are lower-case ISO codes, with a few aliases."""
    area = area.strip().lower()
    iso = beesms_area_aliases().get(area) or area.upper()
    return iso if is_country(iso) else None


def reverse(table: Mapping[str, str]) -> dict[str, list[str]]:
    """ISO -> every provider id that maps to it (Get-SMS has two slugs for the USA)."""
    result: dict[str, list[str]] = {}
    for provider_id, iso in table.items():
        result.setdefault(iso, []).append(provider_id)
    return result


# --- services -------------------------------------------------------------------------------


@cache
def _services() -> dict[str, object]:
    return _load("services.json")


@cache
def service_names() -> Mapping[str, str]:
    return _str_map(_services()["names"])


@cache
def service_aliases() -> Mapping[str, str]:
    return _str_map(_services()["aliases"])


def popular_services() -> tuple[str, ...]:
    popular = _services()["popular"]
    assert isinstance(popular, list)
    return tuple(str(code) for code in popular)


def canonical_service(code: str) -> str:
    """A provider's service code in canonical form (``wapp`` -> ``wa``)."""
    code = code.strip().lower()
    return service_aliases().get(code, code)


def service_name(code: str, fallback: str | None = None) -> str:
    return service_names().get(code) or fallback or code


# --- countries ------------------------------------------------------------------------------


@cache
def _locale(language: str) -> Locale:
    try:
        return Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale("en")


# CLDR two-letter territories that are not countries.
_NOT_COUNTRIES = frozenset({"UN", "EU", "EZ", "QO", "XA", "XB", "ZZ"})


def is_country(iso: str) -> bool:
    iso = iso.upper()
    return (
        len(iso) == 2
        and iso.isalpha()
        and iso not in _NOT_COUNTRIES
        and iso in _locale("en").territories
    )


def country_name(iso: str, language: str = "en") -> str:
    """The country's name in the user's language, from CLDR."""
    iso = iso.upper()
    return str(_locale(language).territories.get(iso) or _locale("en").territories.get(iso, iso))


def flag(iso: str) -> str:
    """The flag emoji: two regional indicator symbols."""
    if not is_country(iso):
        return ""
    return "".join(chr(0x1F1E6 + ord(ch) - ord("A")) for ch in iso.upper())


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def find_countries(query: str, languages: tuple[str, ...] = ("en",)) -> list[str]:
    """ISO codes whose code, alias or name (in any given language or English) matches
    ``query``: exact first, then names with a word starting with it (see
    :mod:`bot.providers.country_names`). Two letters that are no ISO code or alias match
    nothing (``UK`` is not Ukraine)."""
    from bot.providers import country_names  # it imports nothing of this module's users

    return country_names.find(query, languages).all()


def find_services(query: str, codes: Mapping[str, str] | None = None) -> list[str]:
    """Service codes whose code, alias or name matches ``query``: exact first."""
    q = _fold(query.strip())
    if not q:
        return []
    names = codes if codes is not None else service_names()
    aliased = canonical_service(q)
    exact = [c for c in names if c == aliased or _fold(names[c]) == q]
    # Typed names (``теле``, ``whats``) also match the start of a long enough alias.
    by_alias = {
        code
        for alias, code in service_aliases().items()
        if len(alias) >= 4 and _fold(alias).startswith(q)
    }
    partial = sorted(
        (c for c in names if c not in exact and (q in _fold(names[c]) or c in by_alias)),
        key=lambda c: names[c].casefold(),
    )
    return exact + partial
