"""Tests of the fault toolkit (supervisor.testing)."""
