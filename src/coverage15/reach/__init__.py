"""Reach: network distances, the one service-area kernel, coverage per unit and the targets.

Third step of the flow; it imports from :mod:`coverage15.inputs` and
:mod:`coverage15.network` only.
"""
