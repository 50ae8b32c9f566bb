"""Tiny launchers for servers that have no command line of their own, and app adapters."""
