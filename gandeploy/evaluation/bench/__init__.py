"""Speed: in-process and served benchmarks, roofline, perf_analyzer sweeps, Triton knobs, the bench suite."""
