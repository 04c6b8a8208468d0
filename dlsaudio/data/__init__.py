"""Data sets in one item format."""
