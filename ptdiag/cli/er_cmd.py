"""`ptdiag er` (placeholder until its issue lands)."""

from ptdiag.cli.app import app
from ptdiag.errors import PtdiagError


@app.command("er")
def er_command() -> None:
    """Not implemented yet."""
    raise PtdiagError("'ptdiag er' is not implemented yet")
