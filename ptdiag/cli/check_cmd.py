"""`ptdiag check` (placeholder until its issue lands)."""

from ptdiag.cli.app import app
from ptdiag.errors import PtdiagError


@app.command("check")
def check_command() -> None:
    """Not implemented yet."""
    raise PtdiagError("'ptdiag check' is not implemented yet")
