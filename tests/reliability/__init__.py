"""Issue 4, "prove it loses nothing": the six invariants of RELIABILITY.md, checked after
injected faults, kills, races, full or read-only filesystems and hostile input."""
