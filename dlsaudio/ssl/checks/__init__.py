"""Self-checks for the module-3 homework cells.

Each ``check_*`` calls the student's function on known inputs and tests one property per case,
in an order that lets the most specific hint fire first (scale invariance before random values,
eval mode before the loss value). A wrong answer raises ``AssertionError`` with a message that
names the mistake and what to change:

- ``not implemented yet: fill the cell marked # YOUR CODE HERE ...`` (``NotImplementedError``,
  so an unfinished notebook stops where a student expects it to);
- ``wrong signature: the check calls ...`` or ``... raised TypeError: ...`` with the call the
  check made and the signature the task asks for;
- ``wrong shape: expected a scalar, got (...)``;
- ``wrong value on a known case: ... expected ..., got ...`` with the mistake recognised;
- ``missing stop-gradient: gradient flows into z ...``.

Where a number is meant, any real number passes: ``int``, ``float``, NumPy scalars, 0-dim
tensors and arrays. On success a check prints one line starting with ``OK``.

The checks live in modules by concern, and every ``check_*`` is re-exported here, so a notebook
calls ``checks.check_info_nce(...)`` after ``from dlsaudio.ssl import checks``:

- :mod:`~dlsaudio.ssl.checks.calls`: reading a student function's result (called through
  :func:`dlsaudio.student_calls.call_student`) and naming the known mistake a wrong value equals;
- :mod:`~dlsaudio.ssl.checks.loss_properties`: invariance to rescaling and gradients, checked
  for every loss of embeddings;
- :mod:`~dlsaudio.ssl.checks.contrastive`: InfoNCE;
- :mod:`~dlsaudio.ssl.checks.non_contrastive`: BYOL, SimSiam, Barlow Twins and VICReg;
- :mod:`~dlsaudio.ssl.checks.byol_target`: BYOL's momentum schedule and EMA update;
- :mod:`~dlsaudio.ssl.checks.masked`: data2vec's span mask and teacher targets (the bonus task);
- :mod:`~dlsaudio.ssl.checks.training`: a training run's history and collapse;
- :mod:`~dlsaudio.ssl.checks.evaluation`: validation metrics and the comparison table.
"""

from dlsaudio.ssl.checks.byol_target import check_byol_momentum, check_ema_update
from dlsaudio.ssl.checks.contrastive import check_info_nce
from dlsaudio.ssl.checks.evaluation import check_comparison, check_validation_metrics
from dlsaudio.ssl.checks.masked import check_data2vec_targets, check_span_mask
from dlsaudio.ssl.checks.non_contrastive import (
    check_barlow_twins_loss,
    check_byol_loss,
    check_simsiam_loss,
    check_vicreg_loss,
)
from dlsaudio.ssl.checks.training import check_training_history

__all__ = [
    "check_barlow_twins_loss",
    "check_byol_loss",
    "check_byol_momentum",
    "check_comparison",
    "check_data2vec_targets",
    "check_ema_update",
    "check_info_nce",
    "check_simsiam_loss",
    "check_span_mask",
    "check_training_history",
    "check_validation_metrics",
    "check_vicreg_loss",
]
