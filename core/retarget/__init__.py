"""Retargeting: mapping tables (formula, JSON file, apply), auto-mapping by name, and another person's head."""

from .automap import AutoMapReport, auto_map, match_name
from .mapping import (
    ICT_NAMES,
    Mapping,
    MappingError,
    MappingRow,
    apply,
    capture_sources,
    missing_sources,
)
from .person import person_vertices, retarget_to_person

__all__ = [
    "ICT_NAMES",
    "AutoMapReport",
    "Mapping",
    "MappingError",
    "MappingRow",
    "apply",
    "auto_map",
    "capture_sources",
    "match_name",
    "missing_sources",
    "person_vertices",
    "retarget_to_person",
]
