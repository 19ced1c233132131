"""`ptdiag demo` (placeholder until its issue lands)."""

from ptdiag.cli.app import app
from ptdiag.errors import PtdiagError


@app.command("demo")
def demo_command() -> None:
    """Not implemented yet."""
    raise PtdiagError("'ptdiag demo' is not implemented yet")
