"""faust-streaming agents: short orchestrators that decode, call the core, write and publish.

Nothing here runs at import time: :func:`agents.app.build_app` builds the faust app and
registers the agents, tasks and web views on it.
"""
