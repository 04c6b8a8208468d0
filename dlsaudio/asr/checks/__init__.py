"""Self-checks for the module-11 homework, and the tiny model they test on.

Each ``check_*`` runs a student's function on known cases, one property per case, in an order
that lets the most specific hint speak first. It prints one line starting with ``check passed``
when everything holds, raises ``AssertionError`` with a message that names the mistake and the
fix, or ``NotImplementedError`` while the student's cell is still the stub. An exception raised
by the student's code becomes an ``AssertionError`` that says how the check called it.

The references are brute force: the gradient of one big batch made of the whole window, and
the parameters after plain SGD steps on it written out by hand. Known mistakes (the mean of
micro-batch means, dividing by examples, forgetting to zero, clipping scaled gradients, ...)
are computed the same way, so a wrong answer is named by the mistake it matches.

The checks live in modules by concern and are re-exported here, with the names the tests use:

- :mod:`~dlsaudio.asr.checks.toy`: the tiny Whisper-like model, its examples and batches;
- :mod:`~dlsaudio.asr.checks.reference`: brute-force gradients and SGD steps;
- :mod:`~dlsaudio.asr.checks.calls`: reading the student's result, and shared hints (the student's
  function is called through :func:`dlsaudio.student_calls.call_student`, as in module 3);
- :mod:`~dlsaudio.asr.checks.accumulation`: gradient accumulation over a window;
- :mod:`~dlsaudio.asr.checks.train_step`: one training step over a window;
- :mod:`~dlsaudio.asr.checks.sampling`: source probabilities and the draw of examples.
"""

from dlsaudio.asr.checks.accumulation import accumulation_case, check_accumulation
from dlsaudio.asr.checks.reference import STEP_SCALE as STEP_SCALE
from dlsaudio.asr.checks.reference import TOLERANCE as TOLERANCE
from dlsaudio.asr.checks.reference import _relative_error as _relative_error
from dlsaudio.asr.checks.reference import full_batch_gradients
from dlsaudio.asr.checks.reference import model_at as model_at
from dlsaudio.asr.checks.reference import simulate_steps as simulate_steps
from dlsaudio.asr.checks.reference import window_gradient as window_gradient
from dlsaudio.asr.checks.sampling import check_sampler, check_source_probabilities
from dlsaudio.asr.checks.toy import ToySeq2Seq, toy_collate, toy_items
from dlsaudio.asr.checks.train_step import _setup as _setup
from dlsaudio.asr.checks.train_step import check_train_step
from dlsaudio.asr.checks.train_step import step_case as step_case
from dlsaudio.asr.train import whisper_logits as whisper_logits

__all__ = [
    "ToySeq2Seq",
    "accumulation_case",
    "full_batch_gradients",
    "check_accumulation",
    "check_sampler",
    "check_source_probabilities",
    "check_train_step",
    "toy_collate",
    "toy_items",
]
