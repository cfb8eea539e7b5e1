"""The offline learning loop: collaborative item vectors and item neighbours from a log.

Pure numpy + scipy, no I/O (the ``nbo embed`` command does the reading and publishing).
"""
