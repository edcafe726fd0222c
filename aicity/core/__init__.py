"""The aicity kernel: events, entities, state store, bus, clock and domain protocols (knows no domain)."""
