"""Kept for module 3 homework copies already handed out; new code imports :mod:`dlsaudio.ssl.encoders`."""

from dlsaudio.ssl.encoders import make_encoder

__all__ = ["make_encoder"]
