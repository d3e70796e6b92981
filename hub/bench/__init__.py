"""`cebhub bench`: end-to-end throughput and latency beside the cost floor of the same messages."""

from hub.bench.run import BenchOptions, run_bench

__all__ = ["BenchOptions", "run_bench"]
