"""Stage 3, the statistics (torch-free): shared intervals and checks, the baseline line and effective
robustness, the support split, the gap decomposition, scoring of evaluated models, and the verdict."""
