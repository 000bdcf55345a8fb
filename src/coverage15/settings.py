"""Package-wide defaults.

Change them at run time, like osmnx settings::

    import coverage15 as c15
    c15.settings.walk_speed_kmh = 3.6

Attributes
----------
walk_speed_kmh : float
    Walking speed of an older resident. 4 km/h turns 15 minutes into 1,000 m.
minutes : float
    The service-circle time budget.
buffer_m : float
    Half-width of the band drawn around reachable streets for service-area polygons (display
    and area shares). Coverage of points never depends on it.
snap_max_m : float
    Points farther than this from any street are not snapped and count as unreachable.
access_leg : bool
    Add the straight-line walk from a point to its snapped street position to network
    distances (at both ends). Turn off to match tools that ignore it (pandana, osmnx recipes).
working_crs : str
    Projected CRS for lengths, buffers and areas. EPSG:32651 (UTM 51N) suits Shanghai; use
    :func:`coverage15.inputs.layers.utm_crs_for` elsewhere.
location_tolerance_m : float
    How far outside the 街镇 or district a row names its point may land before the location
    check flags it or sets it aside (a layer's ``location_tolerance_m`` overrides it).
output_crs : str
    CRS of every written layer and map.
data_env_var : str
    Environment variable naming the folder of the shared input data.
cache_folder : str
    Where projected graphs, OpenStreetMap answers and the distance work of earlier runs
    (snaps, distances, polygons) are cached, keyed by the content they depend on.
use_cache : bool
    Read and write the cache.
results_cache_mb : float
    Most megabytes of earlier runs' results (snaps, distances, polygons) kept in the cache;
    past it, the least recently used are deleted after each write (default 1,024; set
    ``COVERAGE15_RESULTS_CACHE_MB``). Keep it above one run's results (about 5 MB for
    central Shanghai, 34 MB for a 1M-edge city), or each run evicts what the next one would
    reuse. Networks and OpenStreetMap answers are never deleted automatically: offline runs
    depend on them.
reuse_results : bool
    Reuse the distance work of an earlier run (snaps, distances, polygons) when the network,
    points, settings and code are the same; turn off (``coverage15 run --recompute``) to
    compute afresh while still using cached networks and OpenStreetMap answers.
online : bool
    Allow queries to OpenStreetMap for layers and networks that are not cached. Set
    ``COVERAGE15_OFFLINE=1`` to forbid them (runs then use only local files and the cache).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "access_leg",
    "buffer_m",
    "cache_folder",
    "data_env_var",
    "location_tolerance_m",
    "minutes",
    "online",
    "output_crs",
    "results_cache_mb",
    "reuse_results",
    "snap_max_m",
    "use_cache",
    "walk_speed_kmh",
    "working_crs",
]

walk_speed_kmh: float = 4.0
minutes: float = 15.0
buffer_m: float = 50.0
snap_max_m: float = 500.0
access_leg: bool = True
working_crs: str = "EPSG:32651"
output_crs: str = "EPSG:4326"
location_tolerance_m: float = 300.0
data_env_var: str = "COVERAGE15_DATA"
cache_folder: str = os.environ.get(
    "COVERAGE15_CACHE", str(Path.home() / ".cache" / "coverage15")
)
use_cache: bool = True
reuse_results: bool = True


def _megabytes(name: str, default: float) -> float:
    """A size in MB from the environment variable ``name``; ``default`` if unset or invalid."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        import warnings

        warnings.warn(f"{name}={text!r} is not a size in MB; using {default:g}", stacklevel=2)
        return default
    return value


results_cache_mb: float = _megabytes("COVERAGE15_RESULTS_CACHE_MB", 1024.0)
online: bool = os.environ.get("COVERAGE15_OFFLINE", "") not in ("1", "true", "yes")
