"""The benchmarks: scripts run from the repository root as ``python -m bench.NAME``; bench.harness and
bench.floor are what they share. Not part of the installed package."""
