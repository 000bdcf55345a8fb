"""Scale-out: the reach kernel run per tile, in this process or on a Dask cluster."""
