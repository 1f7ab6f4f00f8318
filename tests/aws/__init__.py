"""Tests of the AWS mode against a local moto server (the backend suites: `tests/conformance/`)."""
