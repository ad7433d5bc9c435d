"""Evaluations: benchmarks on public datasets, suites, metrics and reports for QA teams."""
