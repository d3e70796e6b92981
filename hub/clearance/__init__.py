"""The clearance engine: the declaration-list lifecycle, electronic and manual review."""
