"""Entry point: ``python -m bot`` runs the bot; ``doctor`` and ``offers`` are operator commands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from dotenv import find_dotenv, load_dotenv

from bot.config import Settings, SettingsError, load_settings
from bot.logs import setup_logging
from bot.redact import Redactor


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the bot (the default)")
    doctor = sub.add_parser(
        "doctor", help="check settings, the database and every enabled provider"
    )
    doctor.add_argument(
        "--ledger",
        action="store_true",
        help="also compare the wallet ledger with the orders and the providers' order lists",
    )
    offers = sub.add_parser("offers", help="list every provider's offers, cheapest first")
    offers.add_argument("service", help="a code or a name: tg, Telegram")
    offers.add_argument("country", help="an ISO code or an English name: US, United States")
    offers.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _setup_logging(settings: Settings | None, verbose: bool) -> None:
    """Text lines, or JSON lines with LOG_FORMAT=json; every secret redacted in both."""
    setup_logging(
        Redactor(settings.secrets() if settings else ()),
        level=logging.INFO if verbose else logging.WARNING,
        json_lines=settings is not None and settings.log_format == "json",
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    load_dotenv(find_dotenv(usecwd=True))  # the .env of the directory it runs in
    try:
        settings = load_settings()
    except SettingsError as exc:
        _setup_logging(None, verbose=False)
        sys.stderr.write(f"{exc}\n")
        return 2
    command = args.command or "run"
    _setup_logging(settings, verbose=command == "run")
    if command == "doctor":
        from bot.cli import doctor

        return asyncio.run(doctor(settings, ledger=args.ledger))
    if command == "offers":
        from bot.cli import offers

        return asyncio.run(offers(settings, args.service, args.country, as_json=args.json))
    from bot.app import run

    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
