"""Benchmarks on public datasets; each returns a ``BenchmarkResult`` (the output contract)."""
