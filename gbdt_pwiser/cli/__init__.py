"""Command line: ``gbdt-pwiser compare`` (the main job) and ``gbdt-pwiser bench-neural``."""

from .compare import main

__all__ = ["main"]
