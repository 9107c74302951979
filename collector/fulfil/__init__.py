"""The warehouse: fulfilment requests out, shipment updates in, and a simulated warehouse."""
