"""Country search by the names people type: CLDR names (Babel) plus a small alias table.

Where the names come from, for each ISO 3166-1 alpha-2 country:

* CLDR's territory names in every language searched and in English, and in the language's
  world variant where CLDR has one (``en_001``: "St Lucia" beside "St. Lucia");
* CLDR's territory aliases that name exactly one country (Babel's ``territory_aliases``): the
  ISO alpha-3 codes (``USA``, ``GBR``, ``ARE``) and retired codes (``UK`` -> ``GB``);
* ``data/country_aliases.json`` for what CLDR lacks. Babel does not ship CLDR's alternative
  names (``GB-alt-short`` "UK", ``US-alt-short`` "US", Russian "США"): its locale data keeps
  only the main name of each territory, so those few live in that file.

Matching folds case, accents and ё/е (NFKD, combining marks dropped) and punctuation. A match
is *exact* (a whole name, an alias, a two-letter code) or a *prefix* of a name or of any word
in it ("штаты" finds "Соединенные Штаты", "emir" "United Arab Emirates"). Alpha-3 codes are
prefix-grade matches, so that "aus" still offers Austria beside Australia. Two ASCII letters
are a code or an alias only ("UK" is not Ukraine), and one letter matches nothing.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType

from babel import Locale, UnknownLocaleError
from babel.core import get_global

_DROPPED = re.compile(r"[.'’ʼ`]")  # "U.S.", "Côte d’Ivoire": dropped, not a word break
_BREAKS = re.compile(r"[^\w]+|_")
# CLDR two-letter territories that are not countries.
_NOT_COUNTRIES = frozenset({"UN", "EU", "EZ", "QO", "XA", "XB", "ZZ"})


def fold(text: str) -> str:
    """Case, accents, ё/е and punctuation folded away; words separated by one space."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(_BREAKS.sub(" ", _DROPPED.sub("", text)).split())


@dataclass(frozen=True, slots=True)
class CountryMatches:
    """ISO codes matching a query: ``exact`` (a whole name, code or alias), else ``prefix``."""

    exact: tuple[str, ...] = ()
    prefix: tuple[str, ...] = ()

    def best(self) -> tuple[str, ...]:
        """The exact matches if there are any, else the prefix matches."""
        return self.exact or self.prefix

    def all(self) -> list[str]:
        return [*self.exact, *self.prefix]


@cache
def aliases() -> Mapping[str, str]:
    """The alias table: folded name -> ISO code."""
    raw = resources.files("bot.providers").joinpath("data", "country_aliases.json")
    data = json.loads(raw.read_text("utf-8"))
    assert isinstance(data, dict)
    return MappingProxyType(
        {fold(str(k)): str(v).upper() for k, v in data.items() if not str(k).startswith("_")}
    )


@cache
def _english() -> Locale:
    return Locale("en")


def countries() -> list[str]:
    """Every ISO alpha-2 code CLDR names as a country."""
    return sorted(
        str(code)
        for code in _english().territories
        if len(str(code)) == 2 and str(code).isalpha() and str(code) not in _NOT_COUNTRIES
    )


def _locales(language: str) -> list[Locale]:
    found: list[Locale] = []
    for ident in (language, f"{language}_001"):
        try:
            found.append(Locale.parse(ident.replace("-", "_")))
        except (UnknownLocaleError, ValueError):
            continue
    return found


@cache
def _code_aliases() -> tuple[Mapping[str, str], Mapping[str, str]]:
    """CLDR's territory aliases naming one country: (two-letter, three-letter), folded."""
    known = set(countries())
    two: dict[str, str] = {}
    three: dict[str, str] = {}
    for alias, targets in get_global("territory_aliases").items():
        alias = str(alias)
        if not alias.isalpha() or len(targets) != 1 or str(targets[0]) not in known:
            continue
        (two if len(alias) == 2 else three)[alias.casefold()] = str(targets[0])
    return MappingProxyType(two), MappingProxyType(three)


@cache
def _names(languages: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(folded name, ISO) for every country in every language given and English."""
    known = set(countries())
    pairs: set[tuple[str, str]] = set()
    for language in dict.fromkeys((*languages, "en")):
        for locale in _locales(language):
            for code, name in locale.territories.items():
                if str(code) in known:
                    pairs.add((fold(str(name)), str(code)))
    return tuple(sorted(pairs))


def _unique(codes: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(codes))


def find(query: str, languages: Iterable[str] = ("en",)) -> CountryMatches:
    """Countries whose code, alias or name (in ``languages`` or English) matches ``query``."""
    q = fold(query)
    if len(q) < 2:
        return CountryMatches()
    two, three = _code_aliases()
    if q in aliases():
        return CountryMatches(exact=(aliases()[q],))
    if len(q) == 2 and q.isascii() and q.isalpha():
        if q in two:
            return CountryMatches(exact=(two[q],))
        return CountryMatches(exact=(q.upper(),)) if q.upper() in countries() else CountryMatches()
    names = _names(tuple(languages))
    exact = sorted({iso for name, iso in names if name == q})
    prefix: set[str] = {three[q]} if q in three else set()
    needle = " " + q
    prefix.update(iso for name, iso in names if (" " + name).find(needle) >= 0)
    # Aliases are names too: "brit" finds Britain, "эмир" the Emirates.
    prefix.update(iso for alias, iso in aliases().items() if (" " + alias).find(needle) >= 0)
    return CountryMatches(exact=_unique(exact), prefix=_unique(sorted(prefix - set(exact))))
