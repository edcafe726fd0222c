"""Shipped governance policy files (data only)."""
