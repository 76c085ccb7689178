"""Command-line entry points: ``wbc-cartoonize``, ``wbc-train``, ``wbc-export``, ``wbc-convert``."""
