"""Benchmarks: see ``python -m dlsaudio.bench``."""
