"""The Docker image holds every first-party package the server imports (no Docker engine
here: the Dockerfile is read). A package the app starts importing that the image does not
copy would crash the container at start, as attnviz/ nearly did."""

from __future__ import annotations

import re
import subprocess
import sys

from app.config import ROOT


def test_the_image_copies_every_package_the_server_imports():
    code = "import sys, app.main, app.server; print(' '.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    first_party = {
        name.split(".")[0]
        for name in out.stdout.split()
        if (ROOT / name.split(".")[0] / "__init__.py").is_file()
    }
    assert {"app", "models"} <= first_party
    runtime = ROOT.joinpath("Dockerfile").read_text().split("AS runtime", 1)[1]
    copied = set(re.findall(r"^COPY (\w+)/ \1/", runtime, flags=re.M))
    assert first_party <= copied, f"not in the image: {sorted(first_party - copied)}"
    assert {"static", "templates", "checkpoints"} <= copied
