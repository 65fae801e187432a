"""Finding the verification code in an SMS text, for providers that send only the text."""

from __future__ import annotations

import re

# "123-456" / "1234 5678" style split codes, then a plain 4-8 digit run. A run that is part of
# a longer digit/hyphen sequence (phone numbers, dates like 2025-01-15) is not a code.
_SPLIT_CODE = re.compile(r"(?<![\d-])(\d{3,4})[- ](\d{3,4})(?![\d-]?\d)")
_PLAIN_CODE = re.compile(r"(?<!\d)(?<!\d-)(\d{4,8})(?!\d)(?!-\d)")
_CODE_HINT = re.compile(r"(?i)(code|код|pin|otp|password|passcode|verification)\W{0,20}$")
_NO_CODE = re.compile(r"нет\s+кода", re.IGNORECASE)  # a placeholder some SA servers send


def extract_code(text: str | None) -> str | None:
    """The verification code in an SMS: 4-8 digits, or a split ``123-456`` (as ``123456``).

    A candidate right after a word like "code" wins over an earlier one (a year, say);
    ``Нет кода`` ("no code") is never a code. ``None`` when there is none.
    """
    if not text or _NO_CODE.search(text):
        return None
    candidates: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for match in _SPLIT_CODE.finditer(text):
        candidates.append((match.start(), match.group(1) + match.group(2)))
        taken.append(match.span())
    for match in _PLAIN_CODE.finditer(text):
        if not any(start <= match.start() < end for start, end in taken):
            candidates.append((match.start(), match.group(1)))
    if not candidates:
        return None
    candidates.sort()
    for start, code in candidates:
        if _CODE_HINT.search(text[max(0, start - 40) : start]):
            return code
    return candidates[0][1]
