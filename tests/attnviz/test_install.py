"""`pip install .` (not only `-e`): the wheel carries the UI, the templates and the shipped
checkpoints, and `import attnviz` draws from another folder with no clone beside it."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from app.config import ROOT

DATA = "attnviz-0.1.0.data/data/share/attnviz/"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    return next(out.glob("attnviz-*.whl"))


def test_the_wheel_carries_what_the_server_and_the_notebook_read(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in ROOT.joinpath("static").rglob("*.js"):  # every module the pages inline
        assert DATA + path.relative_to(ROOT).as_posix() in names, path
    for wanted in ("templates/base.html", "static/css/app.css", "static/favicon.svg"):
        assert DATA + wanted in names
    for model in ("encoder-mini", "decoder-mini", "seq2seq-en-fr"):
        for part in ("config.json", "model.safetensors", "tokenizer.json", "card.json"):
            assert f"{DATA}checkpoints/{model}/{part}" in names
    assert "attnviz/__init__.py" in names and "app/config.py" in names


def test_an_installed_attnviz_draws_from_anywhere(wheel, tmp_path):
    """A fresh environment with the wheel installed (the rest of the dependencies from this
    one, on PYTHONPATH) shows a shipped model from a folder that holds no clone."""
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        # --ignore-installed: else pip uninstalls this environment's own attnviz first
        [sys.executable, "-m", "pip", "install", "--no-deps", "--ignore-installed", "-q",
         "--prefix", str(env_dir), str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    code = (
        "import attnviz, app.config as c; "
        "out = attnviz.show(model='decoder-mini', text='the cat sat', view='heatmap'); "
        "print(c.ROOT); print(len(out._repr_html_()))"
    )
    deps = sysconfig.get_paths()["purelib"]  # torch, fastapi, … (not the editable finder)
    env = {**os.environ, "PYTHONPATH": deps}
    out = subprocess.run(
        [str(python), "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    root, size = out.stdout.split()
    assert Path(root).resolve() == (env_dir / "share" / "attnviz").resolve()
    assert int(size) > 10_000
    # and this environment's own install is untouched
    here = subprocess.run(
        [sys.executable, "-c", "import attnviz; print(attnviz.__file__)"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert here.returncode == 0 and str(env_dir) not in here.stdout, here.stderr
