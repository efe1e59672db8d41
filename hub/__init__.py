"""MT4 Hub: a reactive WebSocket streaming hub for MetaTrader 4 trading agents."""

__all__ = ["__version__"]

__version__ = "0.1.0"
