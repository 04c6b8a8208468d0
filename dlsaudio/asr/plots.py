"""Figures of a Whisper fine-tuning run."""

from __future__ import annotations


def plot_history(history):
    """Loss and learning rate per optimizer step, and evaluation metrics; returns the Figure.

    Args:
        history: what :func:`dlsaudio.asr.train.train` returns (a ``History``): ``train``, a
            list of ``{"step", "loss", "lr", ...}``, and ``eval``, a list of
            ``{"step", metric: value, ...}``.
    """
    import matplotlib.pyplot as plt

    n_panels = 3 if history.eval else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(4.5 * n_panels, 3.2))
    steps = [r["step"] for r in history.steps]
    axes[0].plot(steps, [r["loss"] for r in history.steps])
    axes[0].set(title="training loss (per token)", xlabel="optimizer step")
    axes[1].plot(steps, [r["lr"] for r in history.steps])
    axes[1].set(title="learning rate", xlabel="optimizer step")
    if history.eval:
        eval_steps = [r["step"] for r in history.eval]
        for key in history.eval[0]:
            if key != "step":
                axes[2].plot(
                    eval_steps,
                    [r.get(key, float("nan")) for r in history.eval],
                    marker="o",
                    label=key,
                )
        axes[2].set(title="evaluation", xlabel="optimizer step")
        axes[2].legend()
    fig.tight_layout()
    return fig
