"""cebhub: the single window for cross-border e-commerce import clearance."""

__version__ = "0.1.0"
