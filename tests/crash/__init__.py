"""Crash-consistency: a real `cebhub run` killed again and again loses and duplicates nothing."""
