"""Tests of the supervisor core (supervisor/_core/)."""
