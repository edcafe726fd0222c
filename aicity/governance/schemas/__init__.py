"""JSON Schemas shipped with aicity governance (data only)."""
