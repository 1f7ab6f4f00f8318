"""Tests of the AWS mode against a local moto server, and the backend conformance suites."""
