"""Tests of the session actor (actors/)."""
