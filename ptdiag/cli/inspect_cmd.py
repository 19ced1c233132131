"""`ptdiag inspect` (placeholder until its issue lands)."""

from ptdiag.cli.app import app
from ptdiag.errors import PtdiagError


@app.command("inspect")
def inspect_command() -> None:
    """Not implemented yet."""
    raise PtdiagError("'ptdiag inspect' is not implemented yet")
