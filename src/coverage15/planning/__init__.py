"""Planning: site recommendations and what-if scenarios on top of a finished analysis."""
