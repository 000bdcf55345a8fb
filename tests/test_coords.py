"""GCJ-02 / BD-09 conversions, checked against two independent implementations.

``prcoords`` and ``eviltransform`` take and return ``(lat, lon)``; coverage15 takes and returns
``(lng, lat)`` arrays. Differences are turned into metres before comparing.

Known differences of the references (not of coverage15):

* ``eviltransform`` uses the WGS84 semi-major axis (6378137 m) where GCJ-02 uses Krasovsky's
  (6378245 m), so its offsets are ~17 ppm off: under 1 cm in Shanghai.
* ``eviltransform.gcj2wgs_exact`` stops at 1e-6 degree (~0.1 m); ``prcoords``' "bored"
  inverses stop when the last correction was under 1e-5 degree (mm to cm level).
"""

from __future__ import annotations

import math
import warnings

import eviltransform
import numpy as np
import prcoords
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coverage15.inputs import coords

LNG_RANGE = (120.85, 122.2)  # Shanghai, roughly
LAT_RANGE = (30.67, 31.88)
N_POINTS = 2000
M_PER_DEG_LAT = 110_574.0  # at ~31 degrees north, close enough for tolerances
M_PER_DEG_LNG_EQ = 111_320.0

LONDON = (-0.1276, 51.5072)
PEOPLES_SQUARE = (121.4737, 31.2304)


def metres(lng1, lat1, lng2, lat2) -> np.ndarray:
    """Local equirectangular distance in metres (accurate to ~0.5 % at these scales)."""
    lng1, lat1, lng2, lat2 = (np.asarray(a, dtype=float) for a in (lng1, lat1, lng2, lat2))
    dx = (lng1 - lng2) * M_PER_DEG_LNG_EQ * np.cos(np.radians(lat1))
    dy = (lat1 - lat2) * M_PER_DEG_LAT
    return np.hypot(dx, dy)


def reference(func, lng: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply a scalar ``(lat, lon) -> (lat, lon)`` reference function to arrays."""
    out = np.array([tuple(func(b, a)) for a, b in zip(lng, lat, strict=True)], dtype=float)
    return out[:, 1], out[:, 0]


def prc(func):
    """Adapt a prcoords function (one ``(lat, lon)`` tuple argument) to ``f(lat, lon)``."""
    return lambda la, lo: func((la, lo))


@pytest.fixture(scope="module")
def shanghai_points() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20250809)
    return rng.uniform(*LNG_RANGE, N_POINTS), rng.uniform(*LAT_RANGE, N_POINTS)


# --- forward transforms --------------------------------------------------------------------


def test_wgs84_to_gcj02_matches_prcoords_to_the_last_digits(shanghai_points):
    lng, lat = shanghai_points
    gx, gy = coords.wgs84_to_gcj02(lng, lat)
    rx, ry = reference(prc(prcoords.wgs_gcj), lng, lat)
    # same formula, different operation order: agreement to ~1e-14 degree (a nanometre)
    assert np.abs(gx - rx).max() < 1e-10
    assert np.abs(gy - ry).max() < 1e-10


def test_wgs84_to_gcj02_matches_eviltransform_within_a_centimetre(shanghai_points):
    lng, lat = shanghai_points
    gx, gy = coords.wgs84_to_gcj02(lng, lat)
    rx, ry = reference(eviltransform.wgs2gcj, lng, lat)
    # eviltransform's WGS84 axis instead of Krasovsky's: ~17 ppm of a ~500 m offset
    assert metres(gx, gy, rx, ry).max() < 0.02


def test_gcj02_offset_in_shanghai_is_hundreds_of_metres(shanghai_points):
    lng, lat = shanghai_points
    gx, gy = coords.wgs84_to_gcj02(lng, lat)
    offset = metres(gx, gy, lng, lat)
    assert offset.min() > 100
    assert offset.max() < 1000
    # the shift is to the east-south-east in Shanghai
    assert (gx > lng).all()
    assert (gy < lat).all()


def test_bd09_offset_in_shanghai_is_about_a_kilometre(shanghai_points):
    lng, lat = shanghai_points
    bx, by = coords.wgs84_to_bd09(lng, lat)
    offset = metres(bx, by, lng, lat)
    # GCJ-02's ~0.5 km plus Baidu's own (0.0065, 0.006) degree shift
    assert offset.min() > 800
    assert offset.max() < 1500


def test_gcj02_to_bd09_matches_both_references(shanghai_points):
    lng, lat = shanghai_points
    bx, by = coords.gcj02_to_bd09(lng, lat)
    px, py = reference(prc(prcoords.gcj_bd), lng, lat)
    ex, ey = reference(eviltransform.gcj2bd, lng, lat)
    for rx, ry in ((px, py), (ex, ey)):
        assert np.abs(bx - rx).max() < 1e-10
        assert np.abs(by - ry).max() < 1e-10


def test_wgs84_to_bd09_matches_both_references(shanghai_points):
    lng, lat = shanghai_points
    bx, by = coords.wgs84_to_bd09(lng, lat)
    px, py = reference(prc(prcoords.wgs_bd), lng, lat)
    assert np.abs(bx - px).max() < 1e-10
    assert np.abs(by - py).max() < 1e-10
    ex, ey = reference(eviltransform.wgs2bd, lng, lat)
    assert metres(bx, by, ex, ey).max() < 0.02


# --- inverse transforms --------------------------------------------------------------------


def test_gcj02_to_wgs84_matches_precise_references(shanghai_points):
    lng, lat = shanghai_points
    wx, wy = coords.gcj02_to_wgs84(lng, lat)
    px, py = reference(prc(prcoords.gcj_wgs_bored), lng, lat)
    assert metres(wx, wy, px, py).max() < 0.01
    ex, ey = reference(eviltransform.gcj2wgs_exact, lng, lat)
    assert metres(wx, wy, ex, ey).max() < 0.5  # eviltransform stops at 1e-6 degree


def test_gcj02_to_wgs84_beats_the_one_step_rough_inverse(shanghai_points):
    # the rough inverse (subtract the offset at the GCJ point) is metre-level off; ours is not
    lng, lat = shanghai_points
    wx, wy = coords.gcj02_to_wgs84(lng, lat)
    rx, ry = reference(prc(prcoords.gcj_wgs), lng, lat)
    gap = metres(wx, wy, rx, ry)
    assert gap.max() > 0.05
    assert gap.max() < 20
    fx, fy = coords.wgs84_to_gcj02(wx, wy)
    assert metres(fx, fy, lng, lat).max() < 1e-4
    fx, fy = coords.wgs84_to_gcj02(rx, ry)
    assert metres(fx, fy, lng, lat).max() > 0.05


def test_bd09_inverses_match_precise_references(shanghai_points):
    lng, lat = shanghai_points
    gx, gy = coords.bd09_to_gcj02(lng, lat)
    px, py = reference(prc(prcoords.bd_gcj_bored), lng, lat)
    assert metres(gx, gy, px, py).max() < 0.01
    wx, wy = coords.bd09_to_wgs84(lng, lat)
    px, py = reference(prc(prcoords.bd_wgs_bored), lng, lat)
    assert metres(wx, wy, px, py).max() < 0.05


def test_round_trips_are_exact_to_a_nanodegree(shanghai_points):
    lng, lat = shanghai_points
    pairs = [
        (coords.wgs84_to_gcj02, coords.gcj02_to_wgs84),
        (coords.gcj02_to_bd09, coords.bd09_to_gcj02),
        (coords.wgs84_to_bd09, coords.bd09_to_wgs84),
    ]
    for forward, inverse in pairs:
        bx, by = inverse(*forward(lng, lat))
        assert np.abs(bx - lng).max() < 1e-9, forward.__name__
        assert np.abs(by - lat).max() < 1e-9, forward.__name__
        # and the other way: the forward transform reproduces what the inverse was given
        fx, fy = forward(*inverse(lng, lat))
        assert np.abs(fx - lng).max() < 1e-9, inverse.__name__
        assert np.abs(fy - lat).max() < 1e-9, inverse.__name__


def test_peoples_square_hand_value():
    # one point, cross-checked with both references, in metres and by direction
    gx, gy = coords.wgs84_to_gcj02(*PEOPLES_SQUARE)
    rlat, rlng = prcoords.wgs_gcj((PEOPLES_SQUARE[1], PEOPLES_SQUARE[0]))
    elat, elng = eviltransform.wgs2gcj(PEOPLES_SQUARE[1], PEOPLES_SQUARE[0])
    assert float(gx) == pytest.approx(rlng, abs=1e-12)
    assert float(gy) == pytest.approx(rlat, abs=1e-12)
    assert float(metres(gx, gy, elng, elat)) < 0.02
    # about 0.0045 degree east (~430 m) and 0.0019 degree south (~215 m)
    assert float(gx) - PEOPLES_SQUARE[0] == pytest.approx(0.0045, abs=0.0003)
    assert float(gy) - PEOPLES_SQUARE[1] == pytest.approx(-0.0019, abs=0.0003)


# --- dispatch, edge cases ------------------------------------------------------------------


def test_to_wgs84_dispatches_by_system(shanghai_points):
    lng, lat = shanghai_points
    for system, func in (("gcj02", coords.gcj02_to_wgs84), ("bd09", coords.bd09_to_wgs84)):
        got = coords.to_wgs84(lng, lat, system)
        want = func(lng, lat)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    # the two systems really differ (by ~0.7 km in Shanghai)
    g = coords.to_wgs84(lng, lat, "gcj02")
    b = coords.to_wgs84(lng, lat, "bd09")
    assert metres(g[0], g[1], b[0], b[1]).min() > 500
    assert coords.CHINA_SYSTEMS == ("gcj02", "bd09")


@pytest.mark.parametrize("system", ["wgs84", "EPSG:4326", "GCJ02", "bd-09", ""])
def test_to_wgs84_rejects_unknown_system(system):
    with pytest.raises(ValueError, match="unknown Chinese coordinate system"):
        coords.to_wgs84([121.47], [31.23], system)  # type: ignore[arg-type]


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in shape"):
        coords.wgs84_to_gcj02([121.4, 121.5], [31.2])


def test_scalars_in_scalars_out():
    gx, gy = coords.gcj02_to_wgs84(121.4737, 31.2304)
    assert np.ndim(gx) == 0
    assert np.ndim(gy) == 0
    assert math.isfinite(float(gx))
    assert math.isfinite(float(gy))


@pytest.mark.parametrize(
    "func",
    [
        coords.wgs84_to_gcj02,
        coords.gcj02_to_wgs84,
        coords.gcj02_to_bd09,
        coords.bd09_to_gcj02,
        coords.wgs84_to_bd09,
        coords.bd09_to_wgs84,
        lambda x, y: coords.to_wgs84(x, y, "gcj02"),
        lambda x, y: coords.to_wgs84(x, y, "bd09"),
    ],
)
def test_points_outside_china_are_unchanged(func):
    lng = np.array([LONDON[0], -74.006, 151.2093, 140.0])  # London, New York, Sydney, Japan
    lat = np.array([LONDON[1], 40.7128, -33.8688, 36.0])
    x, y = func(lng, lat)
    np.testing.assert_array_equal(x, lng)
    np.testing.assert_array_equal(y, lat)
    # mixed with a point in Shanghai: only that one moves
    x, y = func(np.append(lng, PEOPLES_SQUARE[0]), np.append(lat, PEOPLES_SQUARE[1]))
    np.testing.assert_array_equal(x[:-1], lng)
    np.testing.assert_array_equal(y[:-1], lat)
    assert float(metres(x[-1], y[-1], *PEOPLES_SQUARE)) > 100


def test_prcoords_agrees_that_london_is_left_alone():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lat, lng = prcoords.wgs_gcj((LONDON[1], LONDON[0]))
    x, y = coords.wgs84_to_gcj02(*LONDON)
    assert (float(x), float(y)) == (lng, lat) == LONDON


@pytest.mark.parametrize(
    "func",
    [
        coords.wgs84_to_gcj02,
        coords.gcj02_to_wgs84,
        coords.gcj02_to_bd09,
        coords.bd09_to_gcj02,
        coords.wgs84_to_bd09,
        coords.bd09_to_wgs84,
    ],
)
def test_nan_stays_nan_and_does_not_spoil_other_points(func):
    lng = np.array([np.nan, 121.4737, 121.4737, np.nan])
    lat = np.array([31.2304, np.nan, 31.2304, np.nan])
    x, y = func(lng, lat)
    # every NaN coordinate stays NaN, so a half-missing point stays invalid
    assert np.isnan(x[[0, 3]]).all()
    assert np.isnan(y[[1, 3]]).all()
    assert np.isfinite(x[2])
    assert np.isfinite(y[2])
    want_x, want_y = func(lng[2:3], lat[2:3])
    assert x[2] == want_x[0]
    assert y[2] == want_y[0]
    # all-NaN input works too (no iteration error, no exception)
    ax, ay = func(np.array([np.nan]), np.array([np.nan]))
    assert np.isnan(ax).all()
    assert np.isnan(ay).all()


def test_empty_input():
    x, y = coords.gcj02_to_wgs84(np.array([]), np.array([]))
    assert x.shape == (0,)
    assert y.shape == (0,)


# --- properties ----------------------------------------------------------------------------

lng_st = st.floats(*LNG_RANGE, allow_nan=False)
lat_st = st.floats(*LAT_RANGE, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(lng=lng_st, lat=lat_st)
def test_property_gcj02_round_trip(lng, lat):
    wx, wy = coords.gcj02_to_wgs84(*coords.wgs84_to_gcj02(lng, lat))
    assert abs(float(wx) - lng) < 1e-9
    assert abs(float(wy) - lat) < 1e-9
    gx, gy = coords.wgs84_to_gcj02(*coords.gcj02_to_wgs84(lng, lat))
    assert abs(float(gx) - lng) < 1e-9
    assert abs(float(gy) - lat) < 1e-9


@settings(max_examples=200, deadline=None)
@given(lng=lng_st, lat=lat_st)
def test_property_bd09_round_trip(lng, lat):
    wx, wy = coords.bd09_to_wgs84(*coords.wgs84_to_bd09(lng, lat))
    assert abs(float(wx) - lng) < 1e-9
    assert abs(float(wy) - lat) < 1e-9
    bx, by = coords.wgs84_to_bd09(*coords.to_wgs84(lng, lat, "bd09"))
    assert abs(float(bx) - lng) < 1e-9
    assert abs(float(by) - lat) < 1e-9


@settings(max_examples=200, deadline=None)
@given(lng=lng_st, lat=lat_st)
def test_property_offset_is_smooth_and_bounded(lng, lat):
    # the GCJ-02 shift barely changes over 100 m: no jumps, no wild values
    gx, gy = coords.wgs84_to_gcj02([lng, lng + 0.001], [lat, lat + 0.001])
    shift = metres(gx, gy, [lng, lng + 0.001], [lat, lat + 0.001])
    assert ((shift > 100) & (shift < 1000)).all()
    assert abs(shift[1] - shift[0]) < 1.0
