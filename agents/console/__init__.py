"""``nbo console``: the read-only operator web console (see docs/console.md)."""
