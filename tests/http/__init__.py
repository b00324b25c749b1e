"""Tests of the HTTP layer (supervisor/_http/) over real HTTP."""
