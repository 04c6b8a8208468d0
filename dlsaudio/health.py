"""Kept for module 3 homework copies already handed out; new code imports :mod:`dlsaudio.ssl.health`."""

from dlsaudio.ssl.health import health_metrics

__all__ = ["health_metrics"]
