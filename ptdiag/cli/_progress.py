"""Rich progress bars for pipeline events: one bar per stage (jobs) and one for the running job (steps)."""

from __future__ import annotations

import logging
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

log = logging.getLogger("ptdiag")


class RichProgress:
    """Callable `(event, payload)` sink for `ptdiag.engine.pipeline.analyze`."""

    def __init__(self, console: Console, quiet: bool = False):
        self.quiet = quiet
        self.bar = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                            transient=False, disable=quiet)
        self.stage_task: Any = None
        self.job_task: Any = None

    def __enter__(self) -> RichProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def __call__(self, event: str, payload: Any) -> None:
        if event == "stage":
            name, total = payload  # (stage name, number of jobs or None)
            if total is None:
                log.info("stage %s", name)
            else:
                log.info("stage %s (%s jobs)", name, total)
            if self.stage_task is not None:
                self.bar.update(self.stage_task, visible=total is not None or False)
            self.stage_task = self.bar.add_task(name, total=total) if total else None
        elif event == "job_steps":
            if self.job_task is not None:
                self.bar.remove_task(self.job_task)
            self.job_task = self.bar.add_task("  job", total=payload)
        elif event == "job_advance" and self.job_task is not None:
            self.bar.advance(self.job_task, payload)
        elif event == "job_done":
            spec, out = payload
            log.info("job %s/%s %s (%.1fs)", spec.stage, spec.name, "cached" if out.cached else "done", out.seconds)
            if self.job_task is not None:
                self.bar.remove_task(self.job_task)
                self.job_task = None
            if self.stage_task is not None:
                self.bar.advance(self.stage_task, 1)
