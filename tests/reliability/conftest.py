"""Reliability tests: the PostgreSQL cluster fixture lives in tests/conftest.py."""
