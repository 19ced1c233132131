"""Stage 2, the training engine: models, the training loop, feature extraction, cached jobs and executors,
run directories, and the `analyze` pipeline that orchestrates them (the only stage that imports torch)."""
