"""SNMP access: a fast native v1/v2c client and a pysnmp client (v3), one session interface."""
