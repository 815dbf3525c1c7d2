"""Stage 3, evaluation: accuracy at operating points, throughput, results JSON and plots, for both architectures."""
