"""Packaging checks: generated code is current, every package is installed, the
Dockerfile names only files that exist and installs like the Makefile."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_protos_are_current(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    shutil.copytree(ROOT / "proto", out)
    for f in (out / "nascost" / "v1").glob("*_pb2*.py*"):
        f.unlink()
    protos = sorted(str(p.relative_to(out)) for p in (out / "nascost" / "v1").glob("*.proto"))
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I.", "--python_out=.", "--pyi_out=.", "--grpc_python_out=.", *protos],
        cwd=out, check=True,
    )
    for f in sorted((out / "nascost" / "v1").glob("*_pb2*.py*")):
        committed = ROOT / "proto" / "nascost" / "v1" / f.name
        assert committed.exists(), f"{f.name} is generated but not committed: run `make proto`"
        assert committed.read_text() == f.read_text(), f"{f.name} is stale: run `make proto`"


def test_every_python_folder_is_an_installed_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = config["package-dir"]
    assert set(config["packages"]) == set(mapping)
    listed = {(ROOT / path).resolve() for path in mapping.values()}
    for top in ("server", "client", "predictors", "measurements"):
        for init in (ROOT / top).rglob("__init__.py"):
            assert init.parent.resolve() in listed, f"{init.parent} is not listed in pyproject.toml"


def test_dockerfile_copies_existing_files_and_installs_like_the_makefile() -> None:
    docker = (ROOT / "Dockerfile").read_text()
    for line in docker.splitlines():
        m = re.match(r"COPY\s+(?!--from)(.+)\s+\S+$", line.strip())
        if m:
            for src in m.group(1).split():
                assert (ROOT / src).exists(), f"Dockerfile copies {src}, which does not exist"
    spec = re.search(r'pip install [^\n]*?("\.\[\w+\]")', docker)
    assert spec, "Dockerfile installs no extras spec"
    makefile = (ROOT / "Makefile").read_text()
    assert f"pip install --no-cache-dir {spec.group(1)}" in makefile
    assert "HEALTHCHECK" in docker and "nascost\", \"health\"" in docker
    assert re.search(r"^USER\s+(?!root)\w+", docker, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
