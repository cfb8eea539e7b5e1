"""The batch pipeline: decode, apply to profiles, rank, store, publish (no faust in here)."""
