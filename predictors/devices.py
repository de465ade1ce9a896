"""Device catalogue: the local machine, shipped spec-sheet devices, and devices added by users.

A :class:`Device` is what a request names; its :class:`DeviceSpec` is what the analytic
roofline needs (peak FLOP/s per dtype, memory bandwidth, per-op overhead). The shipped
catalogue (``predictors/data/devices.json``) names the public source of every figure and is
read on first use, never at import. Custom devices persist through a :class:`DeviceStore`
(the measurement store implements it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

from nascost.predictors.errors import DeviceExistsError, InvalidRequestError, UnknownDeviceError

logger = logging.getLogger(__name__)

DeviceKind = Literal["local", "spec", "fleet", "custom"]
DEVICE_KINDS: tuple[str, ...] = ("local", "spec", "fleet", "custom")
LOCAL_DEVICE_ID = "local"
DEVICE_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")

# When a node's dtype has no peak of its own, try these in order.
_PEAK_FALLBACK: dict[str, tuple[str, ...]] = {
    "float32": ("float32",),
    "tf32": ("tf32", "float32"),
    "float16": ("float16", "bfloat16", "float32"),
    "bfloat16": ("bfloat16", "float16", "float32"),
    "float64": ("float64", "float32"),
    "float8": ("float8", "int8", "float16", "float32"),
    "int8": ("int8", "float16", "float32"),
    "uint8": ("int8", "float16", "float32"),
    "int4": ("int8", "float16", "float32"),
}


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """What the analytic predictor needs to know of a device.

    Attributes:
        peak_flops_per_s: dense peak per arithmetic ("float32", "tf32", "float16",
            "bfloat16", "float64", "float8", "int8"), in FLOP/s (ops/s for ints).
        memory_bandwidth_bytes_per_s: main-memory bandwidth.
        cache_bytes: cache level name -> bytes (e.g. {"l2": ..., "l3": ...}).
        cores: cores (CPU) or streaming multiprocessors (GPU).
        memory_bytes: device memory.
        per_op_overhead_s: fixed cost charged to every executed node (launch, dispatch).
        source: where the figures come from (spec sheet, derived, measured).
    """

    peak_flops_per_s: Mapping[str, float]
    memory_bandwidth_bytes_per_s: float
    cache_bytes: Mapping[str, int] = field(default_factory=dict)
    cores: int = 1
    memory_bytes: int = 0
    per_op_overhead_s: float = 0.0
    source: str = ""

    def validate(self) -> None:
        """Raise :class:`InvalidRequestError` when a figure is missing or out of range."""
        if not self.peak_flops_per_s:
            raise InvalidRequestError("device spec needs at least one peak_flops_per_s entry")
        for k, v in self.peak_flops_per_s.items():
            if not isinstance(k, str) or not (float(v) > 0):
                raise InvalidRequestError(f"peak_flops_per_s[{k!r}] must be > 0, got {v!r}")
        if not (float(self.memory_bandwidth_bytes_per_s) > 0):
            raise InvalidRequestError("memory_bandwidth_bytes_per_s must be > 0")
        if self.per_op_overhead_s < 0 or self.cores < 1 or self.memory_bytes < 0:
            raise InvalidRequestError("per_op_overhead_s and memory_bytes must be >= 0, cores >= 1")
        for k, b in self.cache_bytes.items():
            if int(b) < 0:
                raise InvalidRequestError(f"cache_bytes[{k!r}] must be >= 0")

    def peak_for(self, dtype: str) -> float:
        """Peak FLOP/s for arithmetic in ``dtype``, falling back to the nearest known rate."""
        for key in (*_PEAK_FALLBACK.get(dtype, (dtype,)), "float32"):
            if key in self.peak_flops_per_s:
                return float(self.peak_flops_per_s[key])
        return float(max(self.peak_flops_per_s.values()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "peak_flops_per_s": {k: float(v) for k, v in self.peak_flops_per_s.items()},
            "memory_bandwidth_bytes_per_s": float(self.memory_bandwidth_bytes_per_s),
            "cache_bytes": {k: int(v) for k, v in self.cache_bytes.items()},
            "cores": int(self.cores),
            "memory_bytes": int(self.memory_bytes),
            "per_op_overhead_s": float(self.per_op_overhead_s),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeviceSpec:
        try:
            spec = cls(
                peak_flops_per_s={str(k): float(v) for k, v in dict(d["peak_flops_per_s"]).items()},
                memory_bandwidth_bytes_per_s=float(d["memory_bandwidth_bytes_per_s"]),
                cache_bytes={str(k): int(v) for k, v in dict(d.get("cache_bytes") or {}).items()},
                cores=int(d.get("cores", 1)),
                memory_bytes=int(d.get("memory_bytes", 0)),
                per_op_overhead_s=float(d.get("per_op_overhead_s", 0.0)),
                source=str(d.get("source", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise InvalidRequestError(f"invalid device spec: {e!r}") from e
        spec.validate()
        return spec


#: The fields of a device fingerprint that decide how fast a model runs there: the CPU
#: (its name, vendor, family and model numbers, the instruction sets the runtime's kernels
#: dispatch on), cores, memory in GiB, the machine, the onnxruntime version and providers,
#: the GPUs. Not the OS build, the Python version or the CPU's stepping.
DEVICE_CLASS_FIELDS: tuple[str, ...] = (
    "cpu_model",
    "cpu_vendor",
    "cpu_family",
    "cpu_model_number",
    "cpu_isa",
    "logical_cores",
    "physical_cores",
    "memory_bytes",
    "machine",
    "onnxruntime_version",
    "providers",
    "gpus",
)


def device_class(fingerprint: Mapping[str, Any]) -> str | None:
    """``sha256:<hex>`` over a fingerprint's :data:`DEVICE_CLASS_FIELDS`: machines of one
    class share calibrations (``load_priors``) and measured peaks. None without a fingerprint.

    A fingerprint's own ``digest`` covers the OS build as well, and that is no identity for
    the hardware: the AMD EPYC Zen 5 VM of 2026-12-02 booted as ``Linux 6.18.44-fc-v857``
    in one session and ``-v1098`` in the next, so every session had a digest of its own and
    matched none of its earlier calibrations. The CPU's family and model numbers are what
    tell two CPUs of one name apart: ``/proc/cpuinfo`` names both that Zen 5 and the Zen 3
    of 2026-12-01 just "AMD EPYC".

    A fingerprint recorded before the CPU numbers were (no ``cpu_family`` key) has only its
    ``digest`` as its class: it matches what it matched before, and nothing recorded since.
    A fingerprint that is not an object, or whose memory is not a number, is
    :class:`InvalidRequestError`.
    """
    if not fingerprint:
        return None
    if not isinstance(fingerprint, Mapping):
        raise InvalidRequestError(f"device fingerprint is not an object: {fingerprint!r}")
    if "cpu_family" not in fingerprint:
        digest = fingerprint.get("digest")
        return str(digest) if digest else None
    d = {k: fingerprint.get(k) for k in DEVICE_CLASS_FIELDS}
    d["cpu_isa"] = sorted(d["cpu_isa"] or ())
    return fingerprint_hash(d)


def fingerprint_hash(fields: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of fingerprint fields as JSON with sorted keys, ``memory_bytes`` in
    whole GiB (MemTotal moves by a few KiB-MiB across kernels and boots): the one convention
    of a fingerprint's ``digest`` and of its :func:`device_class`."""
    d = dict(fields)
    try:
        d["memory_bytes"] = round(float(d.get("memory_bytes") or 0) / (1 << 30))
    except (TypeError, ValueError) as e:
        raise InvalidRequestError(f"device fingerprint memory_bytes {d.get('memory_bytes')!r} is not a number") from e
    return "sha256:" + hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Device:
    """A device a request can name."""

    id: str
    name: str
    kind: DeviceKind
    spec: DeviceSpec
    fingerprint: Mapping[str, Any] = field(default_factory=dict)
    measurable: bool = False
    execution_provider: str = "CPUExecutionProvider"
    intra_op_threads: int = 0
    # the roofline's error measured on this device outside a calibration (see
    # :func:`parse_roofline_evaluation`); {} when never measured
    roofline_evaluation: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "spec": self.spec.to_dict(),
            "fingerprint": dict(self.fingerprint),
            "measurable": self.measurable,
            "execution_provider": self.execution_provider,
            "intra_op_threads": self.intra_op_threads,
            "roofline_evaluation": dict(self.roofline_evaluation),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Device:
        try:
            kind = str(d.get("kind", "custom"))
            if kind not in DEVICE_KINDS:
                raise InvalidRequestError(f"device kind must be one of {DEVICE_KINDS}, got {kind!r}")
            return cls(
                id=str(d["id"]),
                name=str(d.get("name") or d["id"]),
                kind=kind,  # type: ignore[arg-type]
                spec=DeviceSpec.from_dict(d["spec"]),
                fingerprint=dict(d.get("fingerprint") or {}),
                measurable=bool(d.get("measurable", False)),
                execution_provider=str(d.get("execution_provider", "CPUExecutionProvider")),
                intra_op_threads=int(d.get("intra_op_threads", 0)),
                roofline_evaluation=parse_roofline_evaluation(d.get("roofline_evaluation")),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidRequestError(f"invalid device record: {e!r}") from e


class DeviceStore(Protocol):
    """Persistence for custom devices (implemented by the measurement store)."""

    def load_devices(self) -> list[dict[str, Any]]: ...

    def save_device(self, device_id: str, device: dict[str, Any]) -> None: ...


def validate_device_id(device_id: str) -> str:
    """Return ``device_id`` if it matches ``[a-z0-9][a-z0-9._-]{0,63}``, else raise."""
    if not isinstance(device_id, str) or DEVICE_ID_PATTERN.fullmatch(device_id) is None:
        raise InvalidRequestError(
            f"device id {device_id!r} is invalid: use 1-64 characters of a-z 0-9 . _ -, starting with a letter or digit"
        )
    return device_id


def load_shipped_catalogue(path: Path | None = None) -> list[Device]:
    """Read the shipped spec-sheet catalogue (or ``path``) into ``kind="spec"`` devices."""
    if path is None:
        text = resources.files("nascost.predictors").joinpath("data/devices.json").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    raw = json.loads(text)
    out = []
    for d in raw["devices"]:
        spec_keys = (
            "peak_flops_per_s",
            "memory_bandwidth_bytes_per_s",
            "cache_bytes",
            "cores",
            "memory_bytes",
            "per_op_overhead_s",
            "source",
        )
        spec = DeviceSpec.from_dict({k: d[k] for k in spec_keys if k in d})
        out.append(
            Device(
                id=validate_device_id(d["id"]),
                name=d["name"],
                kind="spec",
                spec=spec,
                measurable=False,
                execution_provider=d.get("execution_provider", "CPUExecutionProvider"),
                roofline_evaluation=parse_roofline_evaluation(d.get("roofline_evaluation")),
            )
        )
    return out


ROOFLINE_EVALUATION_KEYS = ("n", "within_10", "mape", "measured_with")
EVALUATION_NOTE_KEYS = ("cases", "date", "how")  # optional free text of a roofline_evaluation (besides kendall)


def parse_roofline_evaluation(doc: Any) -> dict[str, Any]:
    """A device record's ``roofline_evaluation``: the analytic roofline's error measured on
    that device outside a calibration (e.g. the shipped H200's, by
    ``benchmarks/bench_gpu_roofline.py``), so a prediction there can say how far off the
    roofline was. Needs ``n`` (cases), ``within_10`` and ``mape`` (fractions) and
    ``measured_with`` (the runtime timed: it is not always the server's); other keys
    (``kendall``, ``cases``, ``date``, ``how``, ...) are kept. None or {} is none."""
    if not doc:
        return {}
    if not isinstance(doc, Mapping) or any(k not in doc for k in ROOFLINE_EVALUATION_KEYS):
        raise InvalidRequestError(f"roofline_evaluation needs {list(ROOFLINE_EVALUATION_KEYS)}, got {doc!r}")
    try:
        n, within, mape = int(doc["n"]), float(doc["within_10"]), float(doc["mape"])
    except (TypeError, ValueError) as e:
        raise InvalidRequestError(f"roofline_evaluation: {e}") from e
    if n < 1 or not 0.0 <= within <= 1.0 or not mape >= 0.0 or not str(doc["measured_with"]).strip():
        raise InvalidRequestError(f"roofline_evaluation out of range: {doc!r}")
    kendall = doc.get("kendall")
    if kendall is not None and not (isinstance(kendall, int | float) and -1.0 <= float(kendall) <= 1.0):
        raise InvalidRequestError(f"roofline_evaluation: kendall must be a number in [-1, 1], got {kendall!r}")
    return {**doc, "n": n, "within_10": within, "mape": mape, "measured_with": str(doc["measured_with"])}


class Catalogue:
    """Every device the server knows: local, shipped specs, fleet and custom devices.

    Thread-safe. The shipped file is read on first use.
    """

    def __init__(self, *, store: DeviceStore | None = None, catalogue_path: Path | None = None) -> None:
        self._store = store
        self._catalogue_path = catalogue_path
        self._lock = threading.RLock()
        self._devices: dict[str, Device] | None = None

    def _loaded(self) -> dict[str, Device]:
        with self._lock:
            if self._devices is None:
                devices: dict[str, Device] = {}
                for d in load_shipped_catalogue(self._catalogue_path):
                    devices[d.id] = d
                if self._store is not None:
                    for raw in self._store.load_devices():
                        try:
                            dev = Device.from_dict(raw)
                        except InvalidRequestError as e:
                            logger.warning("skipping stored device %r: %s", raw.get("id"), e)
                            continue
                        if dev.id in devices:
                            logger.warning("stored device %r shadows a shipped one; keeping the shipped one", dev.id)
                            continue
                        devices[dev.id] = dev
                self._devices = devices
            return self._devices

    def set_local(
        self,
        *,
        fingerprint: Mapping[str, Any],
        peak_flops_per_s: Mapping[str, float],
        memory_bandwidth_bytes_per_s: float,
        cores: int,
        memory_bytes: int = 0,
        cache_bytes: Mapping[str, int] | None = None,
        per_op_overhead_s: float = 0.0,
        name: str = "local machine",
        intra_op_threads: int = 1,
        execution_provider: str = "CPUExecutionProvider",
        source: str = "measured by micro-benchmarks on this machine",
    ) -> Device:
        """Install (or replace) the ``local`` device from a fingerprint and measured peaks."""
        spec = DeviceSpec(
            peak_flops_per_s=dict(peak_flops_per_s),
            memory_bandwidth_bytes_per_s=float(memory_bandwidth_bytes_per_s),
            cache_bytes=dict(cache_bytes or {}),
            cores=int(cores),
            memory_bytes=int(memory_bytes),
            per_op_overhead_s=float(per_op_overhead_s),
            source=source,
        )
        spec.validate()
        dev = Device(
            id=LOCAL_DEVICE_ID,
            name=name,
            kind="local",
            spec=spec,
            fingerprint=dict(fingerprint),
            measurable=True,
            execution_provider=execution_provider,
            intra_op_threads=int(intra_op_threads),
        )
        with self._lock:
            self._loaded()[LOCAL_DEVICE_ID] = dev
        return dev

    def get(self, device_id: str) -> Device:
        dev = self._loaded().get(device_id)
        if dev is None:
            raise UnknownDeviceError(f"no device {device_id!r} in the catalogue (list devices to see the ids)")
        return dev

    def resolve(self, device_ids: Iterable[str]) -> list[Device]:
        """Devices for ``device_ids`` in order, duplicates removed; raises on the first unknown id."""
        seen: set[str] = set()
        out = []
        for i in device_ids:
            if i not in seen:
                seen.add(i)
                out.append(self.get(i))
        return out

    def list_devices(self, kinds: Sequence[str] | None = None) -> list[Device]:
        devs = sorted(self._loaded().values(), key=lambda d: (DEVICE_KINDS.index(d.kind), d.id))
        return [d for d in devs if kinds is None or d.kind in kinds]

    def add(
        self,
        device_id: str,
        spec: DeviceSpec,
        *,
        name: str | None = None,
        kind: DeviceKind = "custom",
        fingerprint: Mapping[str, Any] | None = None,
        measurable: bool = False,
        execution_provider: str = "CPUExecutionProvider",
        intra_op_threads: int = 0,
        roofline_evaluation: Mapping[str, Any] | None = None,
    ) -> Device:
        """Add a custom (or fleet) device and persist it through the store (``roofline_evaluation``:
        the roofline's measured error there, see :func:`parse_roofline_evaluation`)."""
        validate_device_id(device_id)
        if kind not in ("custom", "fleet"):
            raise InvalidRequestError(f"only custom or fleet devices can be added, not {kind!r}")
        spec.validate()
        dev = Device(
            id=device_id,
            name=name or device_id,
            kind=kind,
            spec=spec,
            fingerprint=dict(fingerprint or {}),
            measurable=measurable,
            execution_provider=execution_provider,
            intra_op_threads=intra_op_threads,
            roofline_evaluation=parse_roofline_evaluation(roofline_evaluation),
        )
        with self._lock:
            devices = self._loaded()
            if device_id in devices:
                raise DeviceExistsError(f"a device with id {device_id!r} already exists")
            if self._store is not None:
                self._store.save_device(device_id, dev.to_dict())
            devices[device_id] = dev
        return dev
