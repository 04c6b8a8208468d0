"""The package's layout: module 3 loads nothing of module 11, and lazy names stay in step."""

import subprocess
import sys

import dlsaudio.data
import dlsaudio.data.asr


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name for name in out.stdout.split() if name.startswith("dlsaudio")}


def test_module_3_loads_nothing_of_module_11():
    loaded = _modules_after("import dlsaudio.ssl")
    module_11 = {n for n in loaded if n.startswith(("dlsaudio.asr", "dlsaudio.data.asr"))}
    module_11 |= {n for n in loaded if n in {"dlsaudio.data.common_voice", "dlsaudio.data.hf"}}
    assert not module_11, f"import dlsaudio.ssl loaded module 11's {sorted(module_11)}"
    assert "dlsaudio.ssl.losses" in loaded


def test_every_module_11_loader_is_reachable_from_dlsaudio_data():
    for name in dlsaudio.data.asr.__all__:
        assert getattr(dlsaudio.data, name) is getattr(dlsaudio.data.asr, name)


def test_import_paths_of_handed_out_homework_copies_still_work():
    from dlsaudio.augment import default_wave_augment
    from dlsaudio.encoders import make_encoder
    from dlsaudio.health import health_metrics
    from dlsaudio.ssl import augment, encoders, health

    assert default_wave_augment is augment.default_wave_augment
    assert make_encoder is encoders.make_encoder
    assert health_metrics is health.health_metrics


def test_an_unknown_name_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no_such_loader"):
        dlsaudio.data.no_such_loader  # noqa: B018
