"""Side-by-side benchmarks (issue 6): run with `scripts/bench`; never part of the normal test run."""
