"""What pyproject.toml cannot say: a non-editable install (``pip install .``) carries the
browser UI, the page templates and the shipped checkpoints as data, under
``<prefix>/share/attnviz/`` (app/config.py finds them there when the code is not run from a
clone; an editable install reads them from the clone)."""

from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
DATA = ("static", "templates", "checkpoints")


def data_files() -> list[tuple[str, list[str]]]:
    out = []
    for top in DATA:
        if not (HERE / top).is_dir():  # e.g. the Docker build, which installs the code alone
            continue
        folders = [HERE / top, *(p for p in (HERE / top).rglob("*") if p.is_dir())]
        for folder in sorted(folders):
            files = sorted(
                f.relative_to(HERE).as_posix()
                for f in folder.iterdir()
                if f.is_file() and not f.name.startswith(".")
            )
            if files:
                out.append(((Path("share/attnviz") / folder.relative_to(HERE)).as_posix(), files))
    return out


setup(data_files=data_files())
