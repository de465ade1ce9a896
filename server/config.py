"""Server configuration: one frozen record, from flags and ``NASCOST_*`` variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nascost.measurements.sandbox import SandboxLimits

MIB = 1 << 20


def default_data_dir() -> Path:
    env = os.environ.get("NASCOST_DATA_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "nascost"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What a server is started with.

    Attributes:
        data_dir: where the embedded store (SQLite) and predictor artifacts live.
        max_message_bytes: largest gRPC message accepted; bigger models go through UploadGraph.
        max_model_bytes: largest model accepted at all (uploaded in chunks or not).
        graph_cache_bytes: in-memory budget for graphs held by digest.
        analysis_cache_entries: answers kept for repeated (graph, shapes) requests.
        workers: gRPC worker threads.
        auth_token: when set, every call needs ``authorization: Bearer <token>``.
        tls_cert_file / tls_key_file: PEM files; both set turns TLS on.
        metrics_port: serve Prometheus metrics over HTTP on this port (None = off).
        measure_threads: default intra-op threads of measurements (1 is fastest on small
            shared CPUs; the count is stored with every measurement).
        measure_timeout_s / measure_memory_bytes: the measurement worker's wall-clock and
            address-space limits.
        calibration_priors: earlier calibrations (directories of them; env
            ``NASCOST_CALIBRATION_PRIORS``, separated by ``os.pathsep``) whose training data
            joins every calibration of a device of the same class (its fingerprint without
            the OS build; :func:`nascost.predictors.calibration.load_priors`).
    """

    data_dir: Path = field(default_factory=default_data_dir)
    max_message_bytes: int = 64 * MIB
    max_model_bytes: int = 2048 * MIB
    graph_cache_bytes: int = 512 * MIB
    analysis_cache_entries: int = 4096
    workers: int = 8
    auth_token: str | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    metrics_port: int | None = None
    measure_threads: int = 1
    measure_timeout_s: float = 300.0
    measure_memory_bytes: int = 8 << 30
    calibration_priors: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        for name in ("data_dir", "tls_cert_file", "tls_key_file"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        object.__setattr__(self, "calibration_priors", tuple(Path(p) for p in self.calibration_priors))

    def sandbox_limits(self) -> SandboxLimits:
        """Limits of the measurement worker (address space, wall clock, model size)."""
        from nascost.measurements.sandbox import SandboxLimits

        return SandboxLimits(
            address_space_bytes=self.measure_memory_bytes,
            wall_timeout_s=self.measure_timeout_s,
            max_model_bytes=self.max_model_bytes,
        )

    @classmethod
    def from_env(cls, **overrides: object) -> ServerConfig:
        """Defaults, then ``NASCOST_*`` environment variables, then ``overrides`` (not None)."""
        env: dict[str, object] = {}
        if token := os.environ.get("NASCOST_AUTH_TOKEN"):
            env["auth_token"] = token
        if cert := os.environ.get("NASCOST_TLS_CERT"):
            env["tls_cert_file"] = Path(cert)
        if key := os.environ.get("NASCOST_TLS_KEY"):
            env["tls_key_file"] = Path(key)
        if workers := os.environ.get("NASCOST_WORKERS"):
            env["workers"] = int(workers)
        if priors := os.environ.get("NASCOST_CALIBRATION_PRIORS"):
            env["calibration_priors"] = tuple(Path(p) for p in priors.split(os.pathsep) if p)
        env.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in env:
            env["data_dir"] = Path(str(env["data_dir"]))
        return cls(**env)  # type: ignore[arg-type]
