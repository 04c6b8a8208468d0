"""Kept for module 3 homework copies already handed out; new code imports :mod:`dlsaudio.ssl.augment`."""

from dlsaudio.ssl.augment import default_wave_augment

__all__ = ["default_wave_augment"]
