"""`ptdiag report` (placeholder until its issue lands)."""

from ptdiag.cli.app import app
from ptdiag.errors import PtdiagError


@app.command("report")
def report_command() -> None:
    """Not implemented yet."""
    raise PtdiagError("'ptdiag report' is not implemented yet")
