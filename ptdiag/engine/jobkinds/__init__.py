"""One module per job kind, in pipeline order: `baseline`, `features`, `probe`, `finetune` (with the top-block
recipe's `activations` jobs), `support`, `remedies`, `curated` (with `--curated-sizes`).

Each holds the kind's typed parameters (a `JobParams` subclass, hashed into the job's key), the builder of its specs
from the settings, and the documented job function `run_<kind>(spec, ctx) -> JobOutput`.
`ptdiag.engine.compute.run_stages` runs them in order through an executor (local or Ray).
"""
