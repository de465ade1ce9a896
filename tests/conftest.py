"""Shared fixtures: a real server on a free loopback port, and model builders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nascost.server.app import create_server
from nascost.server.config import ServerConfig


@pytest.fixture(scope="session")
def server_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a server running for the whole test session."""
    data_dir: Path = tmp_path_factory.mktemp("nascost-data")
    server, port, _ = create_server("127.0.0.1:0", ServerConfig(data_dir=data_dir, workers=4))
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)
