"""Simulated printers: snmprec files, a synthetic fleet and a UDP SNMP responder for them."""
