"""The replenishment engine: forecast each supply, plan orders by the rules (R6 to R14)."""
