"""``make bench``: StackBE's speed on this machine, as ratios to floors run beside it."""
