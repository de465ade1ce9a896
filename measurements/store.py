"""The embedded store: measurements, content-addressed graphs, custom devices, artifacts.

SQLite (stdlib ``sqlite3``) in WAL mode: one writer at a time, readers never blocked and
never shown a half-written record, and a crash (even ``SIGKILL`` mid-write) loses nothing
that was committed. Every public write is one transaction (``BEGIN IMMEDIATE`` ...
``COMMIT``); a measurement of several batch sizes is written as one transaction, so a
reader sees all its rows or none.

Each thread gets its own connection (``threading.local``); processes share the file safely
through SQLite's locking. The schema is versioned with ``PRAGMA user_version``.

The rows of ``measurements`` are the data set the learned predictors train on: every row
carries the device fingerprint, runtime version, provider, threads and optimization level
it was measured with, and the per-node kernel profile.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from nascost.measurements.runner import MeasurementResult
from nascost.predictors.errors import (
    DeviceExistsError,
    InvalidRequestError,
    LimitExceededError,
    UnknownDeviceError,
)

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DEFAULT_GRAPH_CACHE_BYTES = 2 << 30

_SCHEMA = """
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    run_batches INTEGER NOT NULL,
    created_at REAL NOT NULL,
    graph_digest TEXT NOT NULL,
    device_id TEXT NOT NULL,
    fingerprint_digest TEXT NOT NULL,
    fingerprint_json TEXT NOT NULL,
    onnxruntime_version TEXT NOT NULL,
    provider TEXT NOT NULL,
    intra_op_threads INTEGER NOT NULL,
    inter_op_threads INTEGER NOT NULL,
    optimization_level TEXT NOT NULL,
    batch_size INTEGER NOT NULL,
    p50_ms REAL NOT NULL,
    p90_ms REAL NOT NULL,
    p99_ms REAL NOT NULL,
    mean_ms REAL NOT NULL,
    std_ms REAL NOT NULL,
    min_ms REAL NOT NULL,
    max_ms REAL NOT NULL,
    n INTEGER NOT NULL,
    windows INTEGER NOT NULL,
    stable INTEGER NOT NULL,
    window_spread_pct REAL NOT NULL,
    throughput_examples_per_s REAL NOT NULL,
    peak_memory_bytes INTEGER NOT NULL,
    arena_peak_bytes INTEGER,
    session_load_ms REAL NOT NULL,
    input_shapes_json TEXT NOT NULL,
    nodes_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS measurements_graph ON measurements (graph_digest, device_id);
CREATE INDEX IF NOT EXISTS measurements_device ON measurements (device_id, created_at);
CREATE INDEX IF NOT EXISTS measurements_run ON measurements (run_id);
CREATE TABLE IF NOT EXISTS graphs (
    digest TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at REAL NOT NULL,
    last_used_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS graphs_lru ON graphs (last_used_at);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    spec_json TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS artifacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    version TEXT NOT NULL,
    path TEXT NOT NULL,
    metadata_json TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (device_id, version)
);
CREATE TABLE IF NOT EXISTS device_peaks (
    fingerprint_digest TEXT NOT NULL,
    intra_op_threads INTEGER NOT NULL,
    peaks_json TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (fingerprint_digest, intra_op_threads)
);
"""


@dataclass(frozen=True, slots=True)
class MeasurementRecord:
    """One stored row: one batch size of one measurement."""

    id: int
    run_id: str
    run_batches: int
    created_at: float
    graph_digest: str
    device_id: str
    fingerprint_digest: str
    fingerprint: Mapping[str, Any]
    onnxruntime_version: str
    provider: str
    intra_op_threads: int
    inter_op_threads: int
    optimization_level: str
    batch_size: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    n: int
    windows: int
    stable: bool
    window_spread_pct: float
    throughput_examples_per_s: float
    peak_memory_bytes: int
    arena_peak_bytes: int | None
    session_load_ms: float
    input_shapes: Mapping[str, tuple[int, ...]]
    nodes: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    """A predictor artifact in the index (the files themselves live at ``path``)."""

    id: int
    device_id: str
    version: str
    path: str
    metadata: Mapping[str, Any]
    created_at: float


def _row_to_record(r: sqlite3.Row) -> MeasurementRecord:
    return MeasurementRecord(
        id=int(r["id"]),
        run_id=str(r["run_id"]),
        run_batches=int(r["run_batches"]),
        created_at=float(r["created_at"]),
        graph_digest=str(r["graph_digest"]),
        device_id=str(r["device_id"]),
        fingerprint_digest=str(r["fingerprint_digest"]),
        fingerprint=json.loads(r["fingerprint_json"]),
        onnxruntime_version=str(r["onnxruntime_version"]),
        provider=str(r["provider"]),
        intra_op_threads=int(r["intra_op_threads"]),
        inter_op_threads=int(r["inter_op_threads"]),
        optimization_level=str(r["optimization_level"]),
        batch_size=int(r["batch_size"]),
        p50_ms=float(r["p50_ms"]),
        p90_ms=float(r["p90_ms"]),
        p99_ms=float(r["p99_ms"]),
        mean_ms=float(r["mean_ms"]),
        std_ms=float(r["std_ms"]),
        min_ms=float(r["min_ms"]),
        max_ms=float(r["max_ms"]),
        n=int(r["n"]),
        windows=int(r["windows"]),
        stable=bool(r["stable"]),
        window_spread_pct=float(r["window_spread_pct"]),
        throughput_examples_per_s=float(r["throughput_examples_per_s"]),
        peak_memory_bytes=int(r["peak_memory_bytes"]),
        arena_peak_bytes=None if r["arena_peak_bytes"] is None else int(r["arena_peak_bytes"]),
        session_load_ms=float(r["session_load_ms"]),
        input_shapes={k: tuple(v) for k, v in json.loads(r["input_shapes_json"]).items()},
        nodes=tuple(json.loads(r["nodes_json"])),
    )


class Store:
    """The SQLite store at ``path`` (created with its schema when absent).

    Args:
        path: database file; its directory is created if needed.
        graph_cache_bytes: cap on the total size of cached graphs; least recently used
            graphs are evicted to stay under it.
        busy_timeout_ms: how long a writer waits for another writer's lock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        graph_cache_bytes: int = DEFAULT_GRAPH_CACHE_BYTES,
        busy_timeout_ms: int = 30_000,
    ) -> None:
        self.path = os.fspath(path)
        self.graph_cache_bytes = int(graph_cache_bytes)
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._closed = False
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        self._migrate()

    # ------------------------------------------------------------------ connections

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                timeout=self._busy_timeout_ms / 1000,
                check_same_thread=True,
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(
                "PRAGMA synchronous = NORMAL"
            )  # WAL + NORMAL: durable against process crashes
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all or nothing."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def _migrate(self) -> None:
        conn = self._conn()
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"store {self.path} has schema version {version}, newer than this nascost ({SCHEMA_VERSION})"
            )
        if version < SCHEMA_VERSION:
            with self._write() as c:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        return int(self._conn().execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        """Close every connection this store opened (call once no thread uses it)."""
        with self._all_lock:
            conns, self._all = self._all, []
        for c in conns:
            with contextlib.suppress(sqlite3.Error):
                c.close()
        self._closed = True

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def integrity_ok(self) -> bool:
        row = self._conn().execute("PRAGMA integrity_check").fetchone()
        return bool(row is not None and row[0] == "ok")

    # ------------------------------------------------------------------ measurements

    def add_measurement(
        self,
        result: MeasurementResult,
        *,
        graph_digest: str,
        device_id: str,
        fingerprint: Mapping[str, Any],
        fingerprint_digest: str,
    ) -> list[int]:
        """Store every batch size of ``result`` in one transaction; returns the row ids."""
        if not result.batches:
            raise InvalidRequestError("a measurement without batches cannot be stored")
        run_id = uuid.uuid4().hex
        now = time.time()
        fp_json = json.dumps(dict(fingerprint), sort_keys=True)
        ids: list[int] = []
        with self._write() as c:
            for b in result.batches:
                lat = b.latency
                cur = c.execute(
                    """INSERT INTO measurements (
                        run_id, run_batches, created_at, graph_digest, device_id, fingerprint_digest,
                        fingerprint_json, onnxruntime_version, provider, intra_op_threads, inter_op_threads,
                        optimization_level, batch_size, p50_ms, p90_ms, p99_ms, mean_ms, std_ms, min_ms, max_ms,
                        n, windows, stable, window_spread_pct, throughput_examples_per_s, peak_memory_bytes,
                        arena_peak_bytes, session_load_ms, input_shapes_json, nodes_json)
                    VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                    (
                        run_id,
                        len(result.batches),
                        now,
                        graph_digest,
                        device_id,
                        fingerprint_digest,
                        fp_json,
                        result.onnxruntime_version,
                        result.provider,
                        result.intra_op_threads,
                        result.inter_op_threads,
                        result.optimization_level,
                        b.batch_size,
                        lat.p50_ms,
                        lat.p90_ms,
                        lat.p99_ms,
                        lat.mean_ms,
                        lat.std_ms,
                        lat.min_ms,
                        lat.max_ms,
                        lat.n,
                        lat.windows,
                        int(lat.stable),
                        lat.window_spread_pct,
                        b.throughput_examples_per_s,
                        b.peak_memory_bytes,
                        b.arena_peak_bytes,
                        result.session_load_ms,
                        json.dumps({k: list(v) for k, v in b.input_shapes.items()}),
                        json.dumps([k.to_dict() for k in b.kernels]),
                    ),
                )
                ids.append(int(cur.lastrowid or 0))
        return ids

    def get_measurement(self, measurement_id: int) -> MeasurementRecord | None:
        row = (
            self._conn()
            .execute("SELECT * FROM measurements WHERE id = ?", (measurement_id,))
            .fetchone()
        )
        return None if row is None else _row_to_record(row)

    def measurements(
        self,
        *,
        graph_digest: str | None = None,
        device_id: str | None = None,
        since_id: int = 0,
        limit: int | None = None,
    ) -> list[MeasurementRecord]:
        """Stored rows, oldest first, filtered by graph and/or device."""
        where = ["id > ?"]
        args: list[Any] = [since_id]
        if graph_digest is not None:
            where.append("graph_digest = ?")
            args.append(graph_digest)
        if device_id is not None:
            where.append("device_id = ?")
            args.append(device_id)
        sql = f"SELECT * FROM measurements WHERE {' AND '.join(where)} ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [_row_to_record(r) for r in self._conn().execute(sql, args).fetchall()]

    def count_measurements(self, *, device_id: str | None = None) -> int:
        if device_id is None:
            return int(self._conn().execute("SELECT COUNT(*) FROM measurements").fetchone()[0])
        return int(
            self._conn()
            .execute("SELECT COUNT(*) FROM measurements WHERE device_id = ?", (device_id,))
            .fetchone()[0]
        )

    # ------------------------------------------------------------------ graphs

    def put_graph(self, digest: str, data: bytes) -> None:
        """Cache graph bytes under their digest, evicting least recently used ones over the cap.

        Raises:
            LimitExceededError: the graph alone is larger than the cache.
        """
        if len(data) > self.graph_cache_bytes:
            raise LimitExceededError(
                f"graph of {len(data)} bytes is larger than the graph cache ({self.graph_cache_bytes} bytes)"
            )
        now = time.time()
        with self._write() as c:
            c.execute(
                "INSERT INTO graphs (digest, data, size_bytes, created_at, last_used_at) VALUES (?,?,?,?,?) "
                "ON CONFLICT(digest) DO UPDATE SET last_used_at = excluded.last_used_at",
                (digest, sqlite3.Binary(data), len(data), now, now),
            )
            total = int(c.execute("SELECT COALESCE(SUM(size_bytes), 0) FROM graphs").fetchone()[0])
            if total > self.graph_cache_bytes:
                for row in c.execute(
                    "SELECT digest, size_bytes FROM graphs WHERE digest != ? ORDER BY last_used_at, created_at",
                    (digest,),
                ).fetchall():
                    c.execute("DELETE FROM graphs WHERE digest = ?", (row["digest"],))
                    total -= int(row["size_bytes"])
                    if total <= self.graph_cache_bytes:
                        break

    def get_graph(self, digest: str) -> bytes | None:
        """The cached bytes, or None; marks the graph as recently used."""
        conn = self._conn()
        row = conn.execute("SELECT data FROM graphs WHERE digest = ?", (digest,)).fetchone()
        if row is None:
            return None
        with contextlib.suppress(sqlite3.OperationalError):  # LRU bookkeeping is best effort
            conn.execute(
                "UPDATE graphs SET last_used_at = ? WHERE digest = ?", (time.time(), digest)
            )
        return bytes(row["data"])

    def has_graph(self, digest: str) -> bool:
        return (
            self._conn().execute("SELECT 1 FROM graphs WHERE digest = ?", (digest,)).fetchone()
            is not None
        )

    def graph_cache_size_bytes(self) -> int:
        return int(
            self._conn().execute("SELECT COALESCE(SUM(size_bytes), 0) FROM graphs").fetchone()[0]
        )

    # ------------------------------------------------------------------ devices

    def put_device(self, device_id: str, spec: Mapping[str, Any], *, replace: bool = False) -> None:
        """Register a custom device. Raises :class:`DeviceExistsError` unless ``replace``."""
        if not device_id:
            raise InvalidRequestError("device id must not be empty")
        spec_json = json.dumps(dict(spec), sort_keys=True)
        with self._write() as c:
            if replace:
                c.execute(
                    "INSERT INTO devices (id, spec_json, created_at) VALUES (?,?,?) "
                    "ON CONFLICT(id) DO UPDATE SET spec_json = excluded.spec_json",
                    (device_id, spec_json, time.time()),
                )
            else:
                try:
                    c.execute(
                        "INSERT INTO devices (id, spec_json, created_at) VALUES (?,?,?)",
                        (device_id, spec_json, time.time()),
                    )
                except sqlite3.IntegrityError as e:
                    raise DeviceExistsError(f"device {device_id!r} is already registered") from e

    def get_device(self, device_id: str) -> dict[str, Any]:
        row = (
            self._conn()
            .execute("SELECT spec_json FROM devices WHERE id = ?", (device_id,))
            .fetchone()
        )
        if row is None:
            raise UnknownDeviceError(f"no registered device {device_id!r}")
        spec: dict[str, Any] = json.loads(row["spec_json"])
        return spec

    def devices(self) -> dict[str, dict[str, Any]]:
        rows = self._conn().execute("SELECT id, spec_json FROM devices ORDER BY id").fetchall()
        return {str(r["id"]): json.loads(r["spec_json"]) for r in rows}

    def delete_device(self, device_id: str) -> bool:
        with self._write() as c:
            return c.execute("DELETE FROM devices WHERE id = ?", (device_id,)).rowcount > 0

    # ------------------------------------------------------------------ artifacts

    def add_artifact(
        self, device_id: str, version: str, path: str, metadata: Mapping[str, Any]
    ) -> int:
        """Index a predictor artifact; (device, version) is unique."""
        with self._write() as c:
            try:
                cur = c.execute(
                    "INSERT INTO artifacts (device_id, version, path, metadata_json, created_at) VALUES (?,?,?,?,?)",
                    (
                        device_id,
                        version,
                        path,
                        json.dumps(dict(metadata), sort_keys=True),
                        time.time(),
                    ),
                )
            except sqlite3.IntegrityError as e:
                raise InvalidRequestError(
                    f"artifact version {version!r} of device {device_id!r} already exists"
                ) from e
            return int(cur.lastrowid or 0)

    def artifacts(self, device_id: str | None = None) -> list[ArtifactRecord]:
        """Artifacts, newest first."""
        sql = "SELECT * FROM artifacts"
        args: tuple[Any, ...] = ()
        if device_id is not None:
            sql += " WHERE device_id = ?"
            args = (device_id,)
        sql += " ORDER BY created_at DESC, id DESC"
        return [
            ArtifactRecord(
                id=int(r["id"]),
                device_id=str(r["device_id"]),
                version=str(r["version"]),
                path=str(r["path"]),
                metadata=json.loads(r["metadata_json"]),
                created_at=float(r["created_at"]),
            )
            for r in self._conn().execute(sql, args).fetchall()
        ]

    def latest_artifact(self, device_id: str) -> ArtifactRecord | None:
        found = self.artifacts(device_id)
        return found[0] if found else None

    # ------------------------------------------------------------------ peaks cache
    # Keyed by the device class since 2026-12-02 (``DeviceFingerprint.device_class``: the
    # digest without the OS build); the column kept its name, and rows under an older exact
    # digest are simply not found again (the peaks are measured once more).

    def put_peaks(
        self, fingerprint_digest: str, intra_op_threads: int, peaks: Mapping[str, Any]
    ) -> None:
        with self._write() as c:
            c.execute(
                "INSERT INTO device_peaks (fingerprint_digest, intra_op_threads, peaks_json, created_at) VALUES (?,?,?,?) "
                "ON CONFLICT(fingerprint_digest, intra_op_threads) DO UPDATE SET peaks_json = excluded.peaks_json, "
                "created_at = excluded.created_at",
                (
                    fingerprint_digest,
                    int(intra_op_threads),
                    json.dumps(dict(peaks), sort_keys=True),
                    time.time(),
                ),
            )

    def get_peaks(self, fingerprint_digest: str, intra_op_threads: int) -> dict[str, Any] | None:
        row = (
            self._conn()
            .execute(
                "SELECT peaks_json FROM device_peaks WHERE fingerprint_digest = ? AND intra_op_threads = ?",
                (fingerprint_digest, int(intra_op_threads)),
            )
            .fetchone()
        )
        if row is None:
            return None
        peaks: dict[str, Any] = json.loads(row["peaks_json"])
        return peaks
