"""Measured on the device: sandboxed onnxruntime timings, kernel profiles, the store.

- :mod:`.protocol`: the timing protocol (warm-up, windows until stable, percentiles).
- :mod:`.runner`: one onnxruntime session per model, inputs generated, profiled apart.
- :mod:`.sandbox`: the runner in a resource-limited worker subprocess (the only way a
  submitted model is ever loaded by the server).
- :mod:`.api`: ``measure`` / ``measure_and_store`` with a per-device lock.
- :mod:`.store`: the embedded SQLite store (measurements, graphs, devices, artifacts).
- :mod:`.fingerprint`: the local device's fingerprint and micro-benchmarked peaks.

Nothing is imported here: import the submodule you need.
"""
