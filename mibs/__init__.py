"""MIB knowledge as data: the TOML files beside this module (loaded by agent.profile)."""
