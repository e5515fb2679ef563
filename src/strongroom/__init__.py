"""Strongroom: a verifiable write-once archive for regulated records."""

__version__ = "0.1.0"
