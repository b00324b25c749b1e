"""Conformance and interop: the fixture server the official suite runs against, and real clients."""
