"""The I/O commands behind ``nbo``: produce, catalogue load, tail, demo."""
