"""``nbo simulate``: replay a sample of traffic under the configuration in force and under a
candidate (policy and/or score weights) and report the difference (docs/simulation.md)."""
