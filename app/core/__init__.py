"""The pure core of nbo-stream: contracts, vectors, profiles, catalogue, scoring, messages.

Plain Python + numpy + pydantic; no I/O, no global mutable state, no environment. Every
function takes its configuration as arguments (frozen models with documented defaults).
Import from the module that holds a name (``app.core.scoring``, ``app.core.events``, ...).
"""
