"""Thin adapters that turn framework events into :class:`~langchain_secure.Guard` calls."""
