"""``nbo chaos``: faults injected into a real stack and real workers while events flow, with
every event accounted for (see :mod:`app.chaos.runner`)."""
