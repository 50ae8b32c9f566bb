"""serverbench: which Python server, settings and topology should my app run on, and what will it hold."""

__version__ = "0.1.0"
