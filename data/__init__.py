"""Shipped data. ``data.reference``: the code lists (data/codes) and rule tables (data/rules) the
service reads — production reference data. ``data.democity``: the demo-city generator, for demos,
tests and benchmarks only (production code never imports it)."""
