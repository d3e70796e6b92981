"""Hostile input: every attack file is answered with the right code, and nothing escapes."""
