"""Reproducible measurements; `make bench` runs them, docs/benchmarks.md records the results.

import_time.py      cold-start proxy: import time of every handler in template.yaml, beside its dependencies
catalog_latency.py  catalog requests over HTTP against the local cloud (the emulator, not AWS)
"""
