"""Customer-base models (BG/NBD, Gamma-Gamma): likelihoods, fits, scores, and the scores as
DuckDB functions."""
