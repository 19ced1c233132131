"""`ptdiag analyze` (placeholder until its issue lands)."""

from ptdiag.cli.app import app
from ptdiag.errors import PtdiagError


@app.command("analyze")
def analyze_command() -> None:
    """Not implemented yet."""
    raise PtdiagError("'ptdiag analyze' is not implemented yet")
