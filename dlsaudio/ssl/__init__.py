"""Self-supervised learning for audio: methods, the training loop, evaluation, plots, widgets.

Typical use (see ``week_03_ssl/seminar.ipynb``)::

    from dlsaudio.ssl import make_method, fit, evaluate
    method = make_method("infonce")                 # two-view InfoNCE, small log-mel encoder
    history = fit(method, train_set, max_minutes=5)
    results = evaluate(method, train_set, test_set)  # probe accuracy at k = 1, 2, 5, 10, all

Command line: ``python -m dlsaudio.ssl --method infonce --data sample --minutes 2 --out DIR``.
"""

from dlsaudio.data.waves import WaveCache
from dlsaudio.history import History
from dlsaudio.ssl.evaluation import (
    Embeddings,
    calibrate_batch_norm,
    evaluate,
    extract_embeddings,
    knn_accuracy,
    label_efficiency,
    linear_probe,
    sample_per_class,
    score,
    speaker_shift,
)
from dlsaudio.ssl.masked import Data2Vec, data2vec_targets, masked_regression_loss, span_mask
from dlsaudio.ssl.methods import (
    METHODS,
    MultiFormatContrastive,
    SimCLR,
    SSLMethod,
    StepOutput,
    Supervised,
    make_method,
)
from dlsaudio.ssl.non_contrastive import (
    BYOL,
    BarlowTwins,
    SimSiam,
    VICReg,
    byol_momentum,
    ema_update,
)
from dlsaudio.ssl.train import fit, save_checkpoint

__all__ = [
    "BYOL",
    "METHODS",
    "BarlowTwins",
    "Data2Vec",
    "Embeddings",
    "History",
    "MultiFormatContrastive",
    "SSLMethod",
    "SimCLR",
    "SimSiam",
    "StepOutput",
    "Supervised",
    "VICReg",
    "WaveCache",
    "byol_momentum",
    "calibrate_batch_norm",
    "data2vec_targets",
    "ema_update",
    "evaluate",
    "extract_embeddings",
    "fit",
    "knn_accuracy",
    "label_efficiency",
    "linear_probe",
    "make_method",
    "masked_regression_loss",
    "sample_per_class",
    "save_checkpoint",
    "score",
    "span_mask",
    "speaker_shift",
]
