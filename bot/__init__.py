"""A Telegram bot that sells and rents virtual numbers for SMS verification."""
