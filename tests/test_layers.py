"""Reading layers: formats, filters, coordinate systems, rejected rows, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from coverage15 import CRSError, InputFileError, LayerError
from coverage15.inputs.config import LayerSpec, UnitSpec
from coverage15.inputs.coords import gcj02_to_wgs84, wgs84_to_bd09, wgs84_to_gcj02
from coverage15.inputs.layers import load_layer, load_units, read_table


def _platform(data_dir: Path, agency_type: int, **extra) -> LayerSpec:
    return LayerSpec(
        key="layer", label="x", path=data_dir / "facilities/elderly_services_platform.json",
        x="longitude", y="latitude", crs="gcj02", filter=f"agencyType == {agency_type}",
        name_field="agencyName", **extra,
    )


def _metres(lng1, lat1, lng2, lat2):
    geod = gpd.GeoSeries(gpd.points_from_xy(lng1, lat1), crs=4326).to_crs(32651)
    other = gpd.GeoSeries(gpd.points_from_xy(lng2, lat2), crs=4326).to_crs(32651)
    return geod.distance(other).to_numpy()


@pytest.mark.parametrize(("agency_type", "rows", "missing", "repeated"),
                         [(6, 325, 2, 0), (4, 1561, 9, 18), (3, 601, 0, 0)])
def test_platform_counts_by_type(data_dir, agency_type, rows, missing, repeated):
    layer = load_layer(_platform(data_dir, agency_type))
    assert layer.n_source == rows
    assert (layer.rejected["reason"] == "missing coordinates").sum() == missing
    assert layer.rejected["reason"].str.startswith("duplicate of").sum() == repeated
    assert len(layer.points) + len(layer.rejected) == rows
    assert layer.points.crs.to_epsg() == 4326


def test_gcj02_points_are_converted(data_dir):
    raw = json.loads((data_dir / "facilities/elderly_services_platform.json").read_text("utf-8"))
    first = next(r for r in raw if r["agencyType"] == 6)
    layer = load_layer(_platform(data_dir, 6))
    point = layer.points.geometry.iloc[0]
    lng, lat = gcj02_to_wgs84(float(first["longitude"]), float(first["latitude"]))
    assert point.x == pytest.approx(float(lng), abs=1e-9)
    assert point.y == pytest.approx(float(lat), abs=1e-9)
    shift = _metres([point.x], [point.y], [float(first["longitude"])], [float(first["latitude"])])
    assert 100 < shift[0] < 1000  # GCJ-02 is hundreds of metres off in Shanghai
    assert layer.points["name"].iloc[0] == first["agencyName"]


def test_exclude_points_rejects_the_fallback(data_dir):
    spec = _platform(data_dir, 5, exclude_points=((121.473701, 31.230416),))
    layer = load_layer(spec)
    # 22 community organisations (type 5) sit on the People's Square fallback point
    assert layer.rejected["reason"].str.contains("geocoding fallback").sum() == 22


def test_demand_csv_in_wgs84(data_dir):
    spec = LayerSpec(key="demand", label="d", path=data_dir / "demand/residential_addresses.csv",
                     x="wgs84_lng", y="wgs84_lat", crs="EPSG:4326", name_field="address")
    layer = load_layer(spec)
    assert layer.n_source == 26105
    # the 2022 case lists name many compounds more than once: same address, same point
    assert len(layer.rejected) == 1352
    assert layer.rejected["reason"].str.startswith("duplicate of source row").all()
    assert len(layer.points) == 24753


def test_bd09_and_projected_inputs(tmp_path):
    lng = np.array([121.47, 121.50, 121.44])
    lat = np.array([31.23, 31.24, 31.20])
    bx, by = wgs84_to_bd09(lng, lat)
    gx, gy = wgs84_to_gcj02(lng, lat)
    utm = gpd.GeoSeries(gpd.points_from_xy(lng, lat), crs=4326).to_crs(32651)
    table = (
        "name,bx,by,gx,gy,ux,uy\n"
        + "\n".join(
            ",".join([f"p{i}"] + [repr(float(v[i])) for v in (bx, by, gx, gy, utm.x, utm.y)])
            for i in range(3)
        )
        + "\n"
    )
    path = tmp_path / "points.csv"
    path.write_text(table, encoding="utf-8")
    for x, y, crs in (("bx", "by", "bd09"), ("gx", "gy", "gcj02"), ("ux", "uy", "EPSG:32651")):
        spec = LayerSpec(key="p", label="p", path=path, x=x, y=y, crs=crs, name_field="name")
        points = load_layer(spec).points
        np.testing.assert_allclose(points.geometry.x, lng, atol=1e-8)
        np.testing.assert_allclose(points.geometry.y, lat, atol=1e-8)


def test_bad_and_missing_coordinates_are_set_aside(tmp_path):
    path = tmp_path / "dirty.csv"
    path.write_text("name,x,y\nok,121.47,31.23\nblank,,31.2\ntext,abc,31.2\nfar,500,31.2\n"
                    "swapped,31.2,121.47\nok,121.47,31.23\nnowhere,0,0\n", encoding="utf-8")
    layer = load_layer(LayerSpec(key="d", label="d", path=path, x="x", y="y",
                                 crs="EPSG:4326", name_field="name"))
    assert list(layer.points["name"]) == ["ok"]
    reasons = dict(zip(layer.rejected["name"], layer.rejected["reason"], strict=True))
    assert reasons == {
        "blank": "missing coordinates",
        "text": "non-numeric coordinates",
        "far": "coordinates out of range for longitude/latitude",
        "swapped": "longitude/latitude swapped (x holds a latitude, y a longitude)",
        "ok": "duplicate of source row 0 (same name and point)",
        "nowhere": "at (0, 0): a failed geocode",
    }


def test_vector_formats_round_trip(tmp_path):
    points = gpd.GeoDataFrame({"name": ["a", "b"], "kind": [1, 2]},
                              geometry=[shapely.Point(121.47, 31.23), shapely.Point(121.5, 31.2)],
                              crs=4326)
    for suffix, writer in ((".gpkg", "GPKG"), (".geojson", "GeoJSON"), (".shp", None),
                           (".parquet", None)):
        path = tmp_path / f"points{suffix}"
        if suffix == ".parquet":
            points.to_parquet(path)
        else:
            points.to_file(path, driver=writer) if writer else points.to_file(path)
        layer = load_layer(LayerSpec(key="v", label="v", path=path, name_field="name",
                                     filter="kind == 2"))
        assert list(layer.points["name"]) == ["b"]
        assert layer.points.geometry.iloc[0].equals_exact(shapely.Point(121.5, 31.2), 1e-9)


def test_csv_numbers_become_numbers_and_codes_stay_text(tmp_path):
    path = tmp_path / "typed.csv"
    path.write_text("id,name,x,y,code,beds,ratio,count,signed,street\n"
                    "007,a,121.40,31.20,0012,247,1.5,\"1,200\",+5,12\n"
                    "008,b,121.41,31.21,0003,,2,30,6,张江镇\n", encoding="utf-8")
    layer = load_layer(LayerSpec(key="t", label="t", path=path, x="x", y="y",
                                 crs="EPSG:4326", name_field="name", id_field="id"))
    p = layer.points
    assert list(p["facility_id"]) == ["007", "008"]
    assert list(p["id"]) == ["007", "008"]  # the id field is never converted
    assert list(p["code"]) == ["0012", "0003"]  # leading zeros: a code
    assert list(p["count"]) == ["1,200", "30"]  # a separator keeps the column text
    assert list(p["signed"]) == ["+5", "6"]
    assert list(p["street"]) == ["12", "张江镇"]
    assert "src_name" not in p  # the name field's values are in name
    assert str(p["beds"].dtype) == "Int64"
    assert p["beds"].iloc[0] == 247
    assert p["beds"].isna().iloc[1]
    assert p["ratio"].tolist() == [1.5, 2.0]
    # and a GIS reads them back as numbers from the GeoPackage
    out = tmp_path / "typed.gpkg"
    p.to_file(out, driver="GPKG", engine="pyogrio")
    info = pyogrio.read_info(out)
    types = dict(zip(info["fields"], info["dtypes"], strict=True))
    assert (types["beds"], types["ratio"], types["code"]) == ("int64", "float64", "object")
    back = gpd.read_file(out)
    assert back["beds"].iloc[0] == 247
    assert back["beds"].isna().iloc[1]
    assert back["ratio"].tolist() == [1.5, 2.0]
    assert list(back["code"]) == ["0012", "0003"]


def test_csv_filters_compare_numbers_as_numbers_and_codes_as_text(tmp_path):
    path = tmp_path / "homes.csv"
    path.write_text("name,x,y,beds,code\na,121.40,31.20,247,0012\nb,121.41,31.21,80,0013\n"
                    "c,121.42,31.22,,0012\n", encoding="utf-8")

    def names(expression: str) -> list[str]:
        spec = LayerSpec(key="h", label="h", path=path, x="x", y="y", crs="EPSG:4326",
                         name_field="name", filter=expression)
        return list(load_layer(spec).points["name"])

    assert names("beds >= 100") == ["a"]
    assert names("beds < 100") == ["b"]  # a blank is no number: neither big nor small
    assert names("code == '0012'") == ["a", "c"]


def test_mixed_json_columns_and_long_ids_are_kept_as_read(tmp_path):
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps([
        {"name": "a", "x": 121.40, "y": 31.20, "beds": 50, "kind": 6,
         "org": "1790000000000000123"},
        {"name": "b", "x": 121.41, "y": 31.21, "beds": "60", "kind": "6",
         "org": "1790000000000000456"},
        {"name": "c", "x": 121.42, "y": 31.22, "beds": 70, "kind": 4, "org": "12"},
    ]), encoding="utf-8")

    def layer(expression: str | None = None):
        return load_layer(LayerSpec(key="m", label="m", path=path, x="x", y="y",
                                    crs="EPSG:4326", name_field="name", filter=expression))

    points = layer().points
    assert points["beds"].tolist() == [50, "60", 70]  # not a value lost
    assert points["org"].tolist() == ["1790000000000000123", "1790000000000000456", "12"]
    assert list(layer("kind == 6").points["name"]) == ["a", "b"]


def test_long_decimals_are_numbers_and_object_text_codes_stay_text(tmp_path):
    from coverage15.inputs.layers import _apply_filter

    path = tmp_path / "exported.csv"
    path.write_text("name,x,y,lng\na,121.4737,31.23,121.47370000000001\n"
                    "b,121.3,31.2,121.30000000000001\n", encoding="utf-8")
    spec = LayerSpec(key="e", label="e", path=path, x="x", y="y", crs="EPSG:4326",
                     name_field="name", filter="lng > 121.4")
    layer = load_layer(spec)
    assert list(layer.points["name"]) == ["a"]
    assert layer.points["lng"].tolist() == [121.47370000000001]
    # text held as Python objects (pandas 2 reads CSV text so): codes stay codes
    frame = pd.DataFrame({"code": pd.Series(["0012", "0013", "0012"], dtype=object)})
    for expression, rows in (("code == '0012'", [0, 2]), ("code == '0013'", [1])):
        code = LayerSpec(key="c", label="c", path=path, filter=expression)
        assert _apply_filter(frame, code).index.tolist() == rows


def test_source_columns_named_like_coverage15_s_are_kept_as_src(tmp_path):
    path = tmp_path / "clash.csv"
    path.write_text("title,name,layer,x,y\nHome A,legal name A,old,121.40,31.20\n",
                    encoding="utf-8")
    layer = load_layer(LayerSpec(key="k", label="k", path=path, x="x", y="y",
                                 crs="EPSG:4326", name_field="title"))
    row = layer.points.iloc[0]
    assert (row["name"], row["layer"]) == ("Home A", "k")
    assert (row["src_name"], row["src_layer"]) == ("legal name A", "old")


def test_a_file_of_several_layers_needs_the_layer_named(tmp_path):
    path = tmp_path / "two.gpkg"
    for name, x in (("raw_gcj", 121.47), ("wgs", 121.46)):
        gpd.GeoDataFrame({"name": [name]}, geometry=[shapely.Point(x, 31.23)],
                         crs=4326).to_file(path, layer=name, driver="GPKG", engine="pyogrio")

    def spec(layer: str | None) -> LayerSpec:
        return LayerSpec(key="p", label="p", path=path, name_field="name", layer=layer)

    with pytest.raises(InputFileError, match=r"holds 2 layers \(raw_gcj, wgs\); say which"):
        load_layer(spec(None))
    with pytest.raises(InputFileError, match="no layer 'WGS' in the file; its layers: raw_gcj"):
        load_layer(spec("WGS"))
    assert list(load_layer(spec("wgs")).points["name"]) == ["wgs"]
    # a table without geometry (QGIS keeps its styles in one) does not make a second layer
    styled = tmp_path / "styled.gpkg"
    gpd.GeoDataFrame({"name": ["only"]}, geometry=[shapely.Point(121.47, 31.23)],
                     crs=4326).to_file(styled, layer="points", driver="GPKG", engine="pyogrio")
    pyogrio.write_dataframe(pd.DataFrame({"styleName": ["x"]}), styled, layer="layer_styles")
    only = LayerSpec(key="p", label="p", path=styled, name_field="name")
    assert list(load_layer(only).points["name"]) == ["only"]
    # a file of attribute tables only: one must be named too
    tables = tmp_path / "tables.gpkg"
    for name in ("a", "b"):
        pyogrio.write_dataframe(pd.DataFrame({"name": [name], "x": [121.4], "y": [31.2]}),
                                tables, layer=name)
    with pytest.raises(InputFileError, match=r"holds 2 layers \(a, b\)"):
        load_layer(LayerSpec(key="t", label="t", path=tables, x="x", y="y", crs="EPSG:4326",
                             name_field="name"))


def test_no_crs_is_an_error_never_a_guess(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("name,x,y\na,121.4,31.2\n", encoding="utf-8")
    with pytest.raises(CRSError, match="no crs given"):
        load_layer(LayerSpec(key="p", label="p", path=path, x="x", y="y"))
    with pytest.raises(CRSError, match="unknown coordinate system 'mars-ish'"):
        load_layer(LayerSpec(key="p", label="p", path=path, x="x", y="y", crs="mars-ish"))


def test_missing_column_and_bad_filter_name_the_field(data_dir):
    with pytest.raises(LayerError, match=r"column\(s\) \['lon'\] not found"):
        load_layer(_platform(data_dir, 6).__class__(
            key="c", label="c", path=data_dir / "facilities/elderly_services_platform.json",
            x="lon", y="latitude", crs="gcj02"))
    spec = LayerSpec(key="c", label="c", path=data_dir / "facilities/meal_canteens.csv",
                     x="longitude", y="latitude", crs="gcj02", filter="kind == 3")
    with pytest.raises(LayerError, match="filter 'kind == 3' failed"):
        load_layer(spec)
    nothing = LayerSpec(key="c", label="c",
                        path=data_dir / "facilities/elderly_services_platform.json",
                        x="longitude", y="latitude", crs="gcj02", filter="agencyType == 66")
    with pytest.raises(LayerError, match=r"filter 'agencyType == 66' matches none of the "
                                         r"3,821 rows"):
        load_layer(nothing)


def test_unreadable_files_give_one_clear_error(tmp_path):
    cases = {
        "empty.csv": b"",
        "truncated.json": b'[{"a": 1}, {"a": ',
        "gbk.csv": "name,x,y\n社区食堂,121.4,31.2\n".encode("gb18030"),
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    with pytest.raises(InputFileError, match="file is empty"):
        read_table(tmp_path / "empty.csv")
    with pytest.raises(InputFileError, match="invalid JSON at line 1"):
        read_table(tmp_path / "truncated.json")
    with pytest.raises(InputFileError, match='encoding = "gb18030"'):
        read_table(tmp_path / "gbk.csv")
    assert read_table(tmp_path / "gbk.csv", encoding="gb18030")["name"].iloc[0] == "社区食堂"
    with pytest.raises(InputFileError, match="is a directory"):
        read_table(tmp_path)
    with pytest.raises(InputFileError, match="file not found"):
        read_table(tmp_path / "nope.csv")


def test_units(data_dir):
    jiezhen = load_units(UnitSpec(path=data_dir / "boundaries/jiezhen_osm.geojson",
                                  name_field="name", district_field="district"))
    assert len(jiezhen) == 217
    assert jiezhen.crs.to_epsg() == 4326
    assert jiezhen["district"].nunique() == 16
    districts = load_units(UnitSpec(path=data_dir / "boundaries/districts.geojson",
                                    name_field="县名"))
    assert len(districts) == 16  # read from EPSG:4490, returned in EPSG:4326
    assert districts.crs.to_epsg() == 4326
    assert "黄浦区" in set(districts["unit"])


def test_duplicate_ids(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("id,name,x,y\n1,a,121.40,31.20\n2,b,121.41,31.21\n1,c,121.42,31.22\n"
                    "2,d,121.43,31.23\n", encoding="utf-8")
    layer = load_layer(LayerSpec(key="d", label="d", path=path, x="x", y="y",
                                 crs="EPSG:4326", name_field="name", id_field="id"))
    assert list(layer.points["facility_id"]) == ["1", "2"]
    assert layer.rejected["reason"].tolist() == ["duplicate id '1' (first at source row 0)",
                                                 "duplicate id '2' (first at source row 1)"]
    # counted as one kind of problem, not one line per id
    assert layer.set_aside_counts().to_dict() == {"duplicate id (seen on an earlier row)": 2}


def test_invalid_unit_polygons_are_repaired_and_flagged(tmp_path):
    bowtie = shapely.Polygon([(121.40, 31.20), (121.42, 31.22), (121.42, 31.20),
                              (121.40, 31.22)])
    square = shapely.box(121.43, 31.20, 121.45, 31.22)
    gpd.GeoDataFrame({"name": ["蝴蝶街道", "方块镇"]}, geometry=[bowtie, square],
                     crs=4326).to_file(tmp_path / "u.geojson")
    units = load_units(UnitSpec(path=tmp_path / "u.geojson", name_field="name",
                                aliases=(("方块镇", "方块新区"),)))
    assert units.geometry.is_valid.all()
    assert units["repaired"].tolist() == [True, False]
    assert units["unit"].tolist() == ["蝴蝶街道", "方块新区"]
    assert units.geometry.iloc[0].area == pytest.approx(0.0002, rel=1e-6)  # two triangles


def test_polygon_rows_become_one_site_each_even_in_gcj02(tmp_path):
    """A footprint, a line and a multipoint each count as one site at a point inside them."""
    square = shapely.box(121.470, 31.230, 121.472, 31.232)  # GCJ-02 degrees
    rows = gpd.GeoDataFrame(
        {"name": ["footprint", "street", "pair", "point", "none"]},
        geometry=[square, shapely.LineString([(121.48, 31.24), (121.49, 31.24)]),
                  shapely.MultiPoint([(121.50, 31.25), (121.51, 31.25)]),
                  shapely.Point(121.46, 31.22), None], crs=4326)
    path = tmp_path / "sites.geojson"
    rows.to_file(path, driver="GeoJSON")
    layer = load_layer(LayerSpec(key="s", label="s", path=path, name_field="name", crs="gcj02"))
    assert list(layer.points["name"]) == ["footprint", "street", "pair", "point"]
    assert layer.points.attrs["not_point"] == 3
    assert list(layer.rejected["reason"]) == ["empty geometry"]
    lng, lat = gcj02_to_wgs84(np.array([121.46]), np.array([31.22]))
    assert layer.points.geometry.iloc[3].equals_exact(shapely.Point(lng[0], lat[0]), 1e-9)
    inside = gpd.GeoSeries([square], crs=4326)
    back = wgs84_to_gcj02(*shapely.get_coordinates(layer.points.geometry.iloc[0]).T)
    assert inside.iloc[0].contains(shapely.Point(back[0][0], back[1][0]))


@pytest.mark.parametrize(("names", "message"), [
    (["甲街道", None], r"1 polygon\(s\) have no 'name' \(rows 1\)"),
    (["甲街道", "甲街道"], r"测试区 甲街道 appear\(s\) more than once")])
def test_units_need_a_name_unique_within_their_district(tmp_path, names, message):
    path = tmp_path / "units.geojson"
    gpd.GeoDataFrame({"name": names, "district": ["测试区", "测试区"]},
                     geometry=[shapely.box(121.4, 31.2, 121.41, 31.21),
                               shapely.box(121.41, 31.2, 121.42, 31.21)],
                     crs=4326).to_file(path, driver="GeoJSON")
    with pytest.raises(LayerError, match=message):
        load_units(UnitSpec(path=path, name_field="name", district_field="district"))
