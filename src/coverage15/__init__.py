"""coverage15: network-based 15-minute walking coverage of elderly and social services.

Data flows one way: :mod:`layers` (read, CRS incl. GCJ-02/BD-09) → :mod:`network` (walk graph,
snapping) → :mod:`distances` (walking distances) → :mod:`service_areas` (reached streets,
polygons) → :mod:`coverage` (per point, per 街镇) → :mod:`targets` (plan rules, gap flags)
→ :mod:`report` and :mod:`maps`; :mod:`pipeline` runs them in order and :mod:`cli` is the
command line.
"""

from __future__ import annotations

from coverage15 import settings
from coverage15._errors import (
    ConfigError,
    Coverage15Error,
    CRSError,
    InputFileError,
    LayerError,
    NetworkError,
    OutputError,
)
from coverage15.inputs.config import RunConfig, load_config

__version__ = "0.1.0"

__all__ = [
    "CRSError",
    "ConfigError",
    "Coverage15Error",
    "InputFileError",
    "LayerError",
    "NetworkError",
    "OutputError",
    "RunConfig",
    "__version__",
    "load_config",
    "settings",
]
