"""The walk network: OSM streets as arrays and a CSR matrix, snapping, and its cache.

Second step of the flow; it imports only from :mod:`coverage15.inputs`.
"""
