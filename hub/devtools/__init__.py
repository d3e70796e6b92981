"""Developer tooling: harnesses that prove the hub's reliability contract, not used in production."""
