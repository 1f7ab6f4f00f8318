"""Backend conformance suites: one set of tests over every storage, ledger and serving store."""
