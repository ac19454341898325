"""The service's shared vocabulary and records: warning levels, detector slots, what the core
hands back, signals from outside the series. A leaf: it imports nothing of geowarn, and every
other part may import it."""
