"""loom: the command-line client for The Loom computing marketplace."""

__version__ = "0.1.0"
