"""Keep secrets (bot token, provider keys) out of logs and error text."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

_MASK = "***"
# Query parameters that carry keys at our providers, masked even if the value is unknown.
_KEY_PARAMS = re.compile(r"(?i)\b(api_key|userkey|token|key)=([^&\s\"']+)")
# Telegram bot tokens anywhere (e.g. inside a Bot API URL).
_BOT_TOKEN = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{30,}\b")


class Redactor:
    """Replaces known secrets and key-like query parameters with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = {s for s in secrets if s}

    def add(self, *secrets: str) -> None:
        self._secrets.update(s for s in secrets if s)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, _MASK)
        text = _KEY_PARAMS.sub(lambda m: f"{m.group(1)}={_MASK}", text)
        return _BOT_TOKEN.sub(_MASK, text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the rendered message (args included) and tracebacks."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback now, redacted, so no handler prints the raw one.
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self._redact(formatted)
            record.exc_info = None
        return True


def install_log_redaction(redactor: Redactor) -> None:
    """Attach the filter to every handler of the root logger (call after logging is set up)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter(redactor))
