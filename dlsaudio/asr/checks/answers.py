"""The package's own answers to module 11's tasks, which a student's answer may not call.

Each tuple names (``"module:qualname"``) what solves one task: the public function, the
helpers that compute it, and the references the checks compare with.
"""

from __future__ import annotations

SOURCE_PROBABILITIES = (
    "dlsaudio.asr.sampling:source_probabilities",
    "dlsaudio.asr.sampling:check_mixture",
    "dlsaudio.asr.sampling:SourceWeightedSampler.__init__",
    "dlsaudio.asr.checks.sampling:_normalised",
)
DRAW_INDICES = SOURCE_PROBABILITIES + (
    "dlsaudio.asr.sampling:example_weights",
    "dlsaudio.asr.sampling:SourceWeightedSampler.__iter__",
)
ACCUMULATION = (
    "dlsaudio.asr.accumulation:accumulate_gradients",
    "dlsaudio.asr.checks.reference:window_gradient",
    "dlsaudio.asr.checks.reference:full_batch_gradients",
    "dlsaudio.asr.checks.reference:simulate_steps",
)
TRAIN_STEP = ACCUMULATION + ("dlsaudio.asr.train:train",)
