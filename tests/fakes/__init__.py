"""In-process fakes of external services for end-to-end tests (no network)."""
