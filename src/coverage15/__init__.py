"""coverage15: network-based 15-minute walking coverage of elderly and social services.

The package follows the flow of the work, one subpackage a step:
:mod:`~coverage15.inputs` (config, layers, GCJ-02/BD-09, checks) → :mod:`~coverage15.network`
(walk graph, snapping) → :mod:`~coverage15.reach` (distances, the one service-area kernel,
coverage per 街镇, targets) → :mod:`~coverage15.scale` (the kernel per tile, on Dask) →
:mod:`~coverage15.analysis` (:func:`analyse`, in memory) → :mod:`~coverage15.outputs` (reports,
GeoPackage, PostGIS, maps) → :mod:`~coverage15.pipeline` (a config-driven :func:`run`) →
:mod:`~coverage15.planning` (recommend, what-if) → :mod:`~coverage15.cli`.

Examples
--------
>>> import coverage15 as c15
>>> c15.AnalysisSpec(minutes=15, walk_speed_kmh=4.0).limit_m
1000.0
"""

from __future__ import annotations

from coverage15 import settings
from coverage15._errors import (
    CheckError,
    ConfigError,
    Coverage15Error,
    CRSError,
    InputFileError,
    LayerError,
    NetworkError,
    OutputError,
)
from coverage15._version import __version__
from coverage15.analysis import analyse
from coverage15.inputs.config import AnalysisSpec, RunConfig, load_config
from coverage15.inputs.readers import read_points, read_units
from coverage15.network.graph import WalkNetwork, build_walk_network, network_from_graph
from coverage15.outputs.bundle import write_outputs
from coverage15.outputs.maps import MapOptions, render_map
from coverage15.pipeline import run
from coverage15.reach.kernel import service_areas
from coverage15.reach.targets import load_targets
from coverage15.result import Result

__all__ = [
    "AnalysisSpec",
    "CRSError",
    "CheckError",
    "ConfigError",
    "Coverage15Error",
    "InputFileError",
    "LayerError",
    "MapOptions",
    "NetworkError",
    "OutputError",
    "Result",
    "RunConfig",
    "WalkNetwork",
    "__version__",
    "analyse",
    "build_walk_network",
    "load_config",
    "load_targets",
    "network_from_graph",
    "read_points",
    "read_units",
    "render_map",
    "run",
    "service_areas",
    "settings",
    "write_outputs",
]
