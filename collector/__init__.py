"""The ASR collector: ingests readings, forecasts supplies, places orders."""

__version__ = "0.1.0"
