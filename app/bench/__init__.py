"""``nbo bench``: the worker against raw Kafka and naive baselines, in the same run."""
