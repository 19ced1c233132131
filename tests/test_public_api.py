import subprocess
import sys

import ptdiag


def test_every_public_name_resolves():
    for name in ptdiag.__all__:
        assert getattr(ptdiag, name) is not None, name


def test_import_is_light():
    code = "import sys, ptdiag; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
