"""Chinese map-provider coordinate systems: GCJ-02 and BD-09.

Amap/Gaode, Tencent and Apple Maps in China publish GCJ-02 ("Mars") coordinates; Baidu
publishes BD-09. Both are WGS84 shifted by a deliberate, non-linear offset of a few hundred
metres. They have no EPSG code, so PROJ cannot convert them: this module does, vectorised over
numpy arrays.

The forward transforms (WGS84 → GCJ-02 → BD-09) are the published formulas. The inverses have
no closed form; they are solved by fixed-point iteration until the forward transform of the
answer reproduces the input to 1e-10 degree (about 0.01 mm), far below a metre. Points outside
China's rough bounding box are left unchanged, as every provider does.
"""

from __future__ import annotations

from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from coverage15._types import FloatArray

__all__ = [
    "CHINA_SYSTEMS",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

ChinaSystem = Literal["gcj02", "bd09"]
CHINA_SYSTEMS: Final = ("gcj02", "bd09")

_A: Final = 6378245.0  # Krasovsky 1940 semi-major axis used by GCJ-02
_EE: Final = 0.00669342162296594323  # its first eccentricity squared
_X_PI: Final = np.pi * 3000.0 / 180.0
_TOLERANCE_DEG: Final = 1e-10
_MAX_ITER: Final = 50


def _as_arrays(lng: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    x = np.asarray(lng, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    if x.shape != y.shape:
        msg = f"longitude and latitude differ in shape: {x.shape} != {y.shape}"
        raise ValueError(msg)
    return x, y


def _in_china(lng: FloatArray, lat: FloatArray) -> npt.NDArray[np.bool_]:
    return (lng > 72.004) & (lng < 137.8347) & (lat > 0.8293) & (lat < 55.8271)


def _delta_lat(x: FloatArray, y: FloatArray) -> FloatArray:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _delta_lng(x: FloatArray, y: FloatArray) -> FloatArray:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lng: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Shift WGS84 longitude/latitude (degrees) to GCJ-02.

    Parameters
    ----------
    lng, lat
        WGS84 coordinates in degrees, scalars or arrays of one shape.

    Returns
    -------
    tuple of numpy.ndarray
        GCJ-02 longitude and latitude. NaN stays NaN; points outside China are unchanged.
    """
    x, y = _as_arrays(lng, lat)
    dlat = _delta_lat(x - 105.0, y - 35.0)
    dlng = _delta_lng(x - 105.0, y - 35.0)
    radlat = y / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlng = (dlng * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    inside = _in_china(x, y)
    return np.where(inside, x + dlng, x), np.where(inside, y + dlat, y)


def gcj02_to_bd09(lng: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Shift GCJ-02 coordinates to Baidu's BD-09 (degrees in, degrees out)."""
    x, y = _as_arrays(lng, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    inside = _in_china(x, y)
    return (np.where(inside, z * np.cos(theta) + 0.0065, x),
            np.where(inside, z * np.sin(theta) + 0.006, y))


def wgs84_to_bd09(lng: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Shift WGS84 coordinates to BD-09 (through GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lng, lat))


def _invert(
    forward: object, lng: npt.ArrayLike, lat: npt.ArrayLike, first: tuple[FloatArray, FloatArray]
) -> tuple[FloatArray, FloatArray]:
    """Solve ``forward(w) == target`` for ``w`` by fixed-point iteration from ``first``."""
    tx, ty = _as_arrays(lng, lat)
    fwd = forward  # a callable (lng, lat) -> (lng, lat); typed loosely to keep the helper small
    wx, wy = first
    for _ in range(_MAX_ITER):
        fx, fy = fwd(wx, wy)  # type: ignore[operator]
        ex, ey = fx - tx, fy - ty
        wx, wy = wx - ex, wy - ey
        err = np.nanmax(np.abs(np.concatenate([np.ravel(ex), np.ravel(ey)])), initial=0.0)
        if err < _TOLERANCE_DEG:
            break
    return wx, wy


def gcj02_to_wgs84(lng: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert GCJ-02 coordinates back to WGS84, exact to well under a millimetre.

    Parameters
    ----------
    lng, lat
        GCJ-02 coordinates in degrees.

    Returns
    -------
    tuple of numpy.ndarray
        WGS84 longitude and latitude.
    """
    x, y = _as_arrays(lng, lat)
    return _invert(wgs84_to_gcj02, x, y, (x.copy(), y.copy()))


def bd09_to_gcj02(lng: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert BD-09 coordinates to GCJ-02 (the usual approximation, refined iteratively)."""
    x, y = _as_arrays(lng, lat)
    x0, y0 = x - 0.0065, y - 0.006
    z = np.sqrt(x0 * x0 + y0 * y0) - 0.00002 * np.sin(y0 * _X_PI)
    theta = np.arctan2(y0, x0) - 0.000003 * np.cos(x0 * _X_PI)
    inside = _in_china(x, y)
    first = (np.where(inside, z * np.cos(theta), x), np.where(inside, z * np.sin(theta), y))
    return _invert(gcj02_to_bd09, x, y, first)


def bd09_to_wgs84(lng: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert BD-09 coordinates to WGS84."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lng, lat))


def to_wgs84(
    lng: npt.ArrayLike, lat: npt.ArrayLike, system: ChinaSystem
) -> tuple[FloatArray, FloatArray]:
    """Convert coordinates in a named Chinese system to WGS84.

    Parameters
    ----------
    lng, lat
        Coordinates in degrees.
    system
        ``"gcj02"`` or ``"bd09"``.

    Returns
    -------
    tuple of numpy.ndarray
        WGS84 longitude and latitude.
    """
    if system == "gcj02":
        return gcj02_to_wgs84(lng, lat)
    if system == "bd09":
        return bd09_to_wgs84(lng, lat)
    msg = f"unknown Chinese coordinate system {system!r}; expected one of {CHINA_SYSTEMS}"
    raise ValueError(msg)
