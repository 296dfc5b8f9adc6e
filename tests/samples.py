"""The sample events in events/<folder>/*.json (for `make invoke` and `sam local invoke -e`), each with its expected
response beside it in <sample>.response.json (events/README.md)."""

from __future__ import annotations

from pathlib import Path

EVENTS = Path(__file__).resolve().parents[1] / "events"
RESPONSE_SUFFIX = ".response.json"


def sample_events(pattern: str = "*/*.json") -> list[Path]:
    """The sample events matching `pattern` under events/, without the expected responses."""
    return sorted(path for path in EVENTS.glob(pattern) if not path.name.endswith(RESPONSE_SUFFIX))


def response_file(sample: Path) -> Path:
    return sample.with_name(sample.name.removesuffix(".json") + RESPONSE_SUFFIX)
