"""The aicity kernel: events, entities, state store, bus, clock and domain protocols.

NOTE FOR HELPERS (temporary): the shared "working rules" referred to in your task are in
/work/main/.notes/helpers.md — read them now (commit rules, ownership, time limits, final report).
"""
