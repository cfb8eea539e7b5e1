"""Adapters of :class:`app.ports.ProfileStore`: Redis (production) and in-memory (tests)."""
