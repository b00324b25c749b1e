"""Keep pytest out of the benchmark package: `scripts/bench` runs it, the test suite never does."""

collect_ignore_glob = ["*"]
