"""Tests of the command line (supervisor/_cli/) as real processes."""
