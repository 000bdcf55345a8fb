"""Outputs: files (CSV, Excel, GeoPackage, GeoParquet, PostGIS), interactive and static maps.

Everything here reads a :class:`coverage15.result.Result`; nothing imports the orchestrator.
"""
