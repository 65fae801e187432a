"""Stateful emulators of the providers' HTTP APIs, written from their docs (127.0.0.1)."""
