"""Governance and trust: decision records, the tamper-evident ledger, explanations, oversight, consent, equity.

Domain-agnostic: nothing here imports a domain; domain specifics arrive as data (entity types, ranges, actions).
"""
