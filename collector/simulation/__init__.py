"""Replay a fleet's life day by day through the collector's real code."""
