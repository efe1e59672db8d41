"""Trading: commands serialised per agent, idempotent, risk-checked, reconciled."""
