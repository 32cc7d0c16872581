"""Reports a person reads: the demo's HTML QA report and its pictures (pure numpy PNG)."""
