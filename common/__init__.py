"""Plumbing shared by the agent and the collector (no domain logic)."""
