"""The operator console's pure parts: its figures (:mod:`app.console.lift`) and the ports its
pages read through (:mod:`app.console.sources`). The web application is ``agents/console/``."""
