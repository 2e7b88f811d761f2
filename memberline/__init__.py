"""Memberline: the composition root (CLI, configuration, wiring of services)."""

__version__ = "0.1.0"
