"""The package's own answers to module 3's tasks, which a student's answer may not call.

Each tuple names (``"module:qualname"``) what solves one task: the public function, the
private helpers that compute it, and the references the checks and the benchmark compare with.
"""

from __future__ import annotations

INFO_NCE = (
    "dlsaudio.ssl.losses:info_nce",
    "dlsaudio.ssl.losses:InfoNCE.forward",
    "dlsaudio.ssl.checks.contrastive:_nt_xent_rows",
    "dlsaudio.bench.ssl:reference_info_nce",
    "dlsaudio.bench.ssl:seminar_info_nce",
)
BYOL_LOSS = ("dlsaudio.ssl.losses:byol_loss", "dlsaudio.ssl.losses:BYOLLoss.forward")
SIMSIAM_LOSS = (
    "dlsaudio.ssl.losses:simsiam_loss",
    "dlsaudio.ssl.losses:SimSiamLoss.forward",
    "dlsaudio.ssl.checks.non_contrastive:_simsiam_no_stop_gradient",
)
BYOL_MOMENTUM = (
    "dlsaudio.ssl.non_contrastive:byol_momentum",
    "dlsaudio.ssl.checks.byol_target:_cosine_momentum",
)
EMA_UPDATE = ("dlsaudio.ssl.non_contrastive:ema_update",)
BARLOW_TWINS_LOSS = (
    "dlsaudio.ssl.losses:barlow_twins_loss",
    "dlsaudio.ssl.losses:cross_correlation",
    "dlsaudio.ssl.losses:_correlation",
    "dlsaudio.ssl.losses:BarlowTwinsLoss.forward",
)
VICREG_LOSS = (
    "dlsaudio.ssl.losses:vicreg_loss",
    "dlsaudio.ssl.losses:invariance_term",
    "dlsaudio.ssl.losses:variance_term",
    "dlsaudio.ssl.losses:covariance_term",
    "dlsaudio.ssl.losses:_std_hinge",
    "dlsaudio.ssl.losses:_covariance",
    "dlsaudio.ssl.losses:VICRegLoss.forward",
)
SPAN_MASK = ("dlsaudio.ssl.masked:span_mask", "dlsaudio.ssl.masked:Data2Vec.mask")
DATA2VEC_TARGETS = (
    "dlsaudio.ssl.masked:data2vec_targets",
    "dlsaudio.ssl.masked:Data2Vec.targets",
    "dlsaudio.ssl.checks.masked:_instance_norm",
)
LOSSES = INFO_NCE + BYOL_LOSS + SIMSIAM_LOSS + BARLOW_TWINS_LOSS + VICREG_LOSS
# The training steps and hooks of the package's methods: a student's training_step or
# on_step_end that reaches one (through super(), say) runs the package's training.
METHOD_CLASSES = (
    ("methods", "SimCLR"),
    ("methods", "MultiFormatContrastive"),
    ("methods", "Supervised"),
    ("non_contrastive", "BYOL"),
    ("non_contrastive", "SimSiam"),
    ("non_contrastive", "BarlowTwins"),
    ("non_contrastive", "VICReg"),
    ("masked", "Data2Vec"),
)
TRAINING_STEPS = tuple(
    f"dlsaudio.ssl.{module}:{name}.training_step" for module, name in METHOD_CLASSES
)
STEP_HOOKS = (
    "dlsaudio.ssl.non_contrastive:BYOL.on_step_end",
    "dlsaudio.ssl.masked:Data2Vec.on_step_end",
)
TRAINING = TRAINING_STEPS + STEP_HOOKS + LOSSES + BYOL_MOMENTUM + EMA_UPDATE
TRAINING += SPAN_MASK + DATA2VEC_TARGETS
