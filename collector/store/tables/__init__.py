"""The collector's tables, one module per area; collector.store.schema gathers them."""
