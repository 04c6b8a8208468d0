import math

import pytest
import torch

from dlsaudio.audio import log_mel, mean_normalize, speech_frames
from dlsaudio.ssl.encoders import MelEncoder


def speech_and_silence(seed=0):
    """(2, 8, 10) log-mels: frames 0-5 speech (around 0), frames 6-9 padding (-13.8)."""
    g = torch.Generator().manual_seed(seed)
    mel = torch.randn(2, 8, 10, generator=g)
    mel[..., 6:] = math.log(1e-6)
    return mel


def test_the_mean_is_taken_over_speech_frames_only():
    mel = speech_and_silence()
    out = mean_normalize(mel)
    expected = mel - mel[..., :6].mean(dim=-1, keepdim=True)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(out[..., :6].mean(dim=-1), torch.zeros(2, 8), atol=1e-6, rtol=0)


def test_speech_frames_marks_the_frames_near_the_loudest():
    mel = speech_and_silence()
    assert speech_frames(mel).shape == (2, 1, 10)
    assert speech_frames(mel)[:, 0].tolist() == [[1.0] * 6 + [0.0] * 4] * 2


def test_a_channel_offset_is_removed():
    """A microphone's colouring multiplies each band's power: an offset per band in log."""
    mel = speech_and_silence()
    channel = torch.linspace(-3, 3, 8)[None, :, None]  # (1, n_mels, 1)
    torch.testing.assert_close(mean_normalize(mel + channel), mean_normalize(mel))


def test_a_single_clip_and_the_threshold():
    mel = speech_and_silence()[0]
    torch.testing.assert_close(mean_normalize(mel), mean_normalize(mel[None])[0])
    quiet = mel.clone()
    quiet[:, 5] -= 20  # frame 5 now 20 nepers (87 dB) below the others: not speech
    out = mean_normalize(quiet, speech_db=50)
    torch.testing.assert_close(out[:, 0], quiet[:, 0] - quiet[:, :5].mean(dim=-1))


def test_on_real_features_the_spectrum_of_a_gain_change_is_unchanged():
    g = torch.Generator().manual_seed(1)
    wave = torch.randn(1, 8000, generator=g)  # loud enough that the log's floor plays no part
    torch.testing.assert_close(
        mean_normalize(log_mel(wave)), mean_normalize(log_mel(0.5 * wave)), atol=1e-3, rtol=0
    )


@pytest.mark.parametrize(
    "mel, kwargs, match",
    [
        (
            torch.zeros(10),
            {},
            r"expected a log-mel of shape \(n_mels, frames\)",
        ),
        (torch.zeros(2, 3), {"speech_db": 0}, "speech_db must be positive"),
    ],
)
def test_bad_input(mel, kwargs, match):
    with pytest.raises(ValueError, match=match):
        mean_normalize(mel, **kwargs)


def test_the_mel_encoder_uses_it_unless_told_not_to():
    torch.manual_seed(0)
    wave = torch.randn(3, 4000)
    coloured = torch.fft.irfft(torch.fft.rfft(wave) * torch.linspace(0.5, 2, 2001), n=4000)
    enc = MelEncoder(channels=(4, 8), blocks=(1, 1)).eval()
    assert enc.mean_norm
    plain = MelEncoder(channels=(4, 8), blocks=(1, 1), mean_norm=False).eval()
    plain.load_state_dict(enc.state_dict())
    with torch.no_grad():
        shift = (enc(coloured) - enc(wave)).abs().mean()
        shift_plain = (plain(coloured) - plain(wave)).abs().mean()
    assert shift < 0.5 * shift_plain  # the colouring moves normalised features far less
