"""The wire contract between agent and collector."""
