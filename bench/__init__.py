"""Benchmarks that measure the product's claim with the product's own engine (budgetpass.bench)."""
