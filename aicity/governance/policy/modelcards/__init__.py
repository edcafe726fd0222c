"""Human-written model card metadata (data only)."""
