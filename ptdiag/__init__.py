"""ptdiag: ask your distribution shift whether pre-training will help.

The library is usable from Python; the `ptdiag` command is a thin layer over it.
"""

__version__ = "0.1.0"
