"""The seminars as a student sees them: opened in JupyterLab, run in a real headless Chromium.

Each seminar is copied into a fresh folder served by JupyterLab on 127.0.0.1, opened at
``/lab/tree/<name>``, and run with *Run > Run All Cells* by the browser (the kernel inherits
``DLSAUDIO_SMOKE=1``). Then we check what a student would check by eye: no error in any output,
every figure loaded, every widget rendered (no "Error displaying widget"), sliders and dropdowns
that change the figure when moved, and no error in the browser's console. Screenshots go to
``$BROWSER_SCREENSHOTS`` (default: the test's temporary folder, printed), also on failure.

Where these tests run, they are the seminars' run in the suite: nbval's run of the same notebook
is skipped (``runs_notebook`` in ``conftest.py``), so each seminar executes once. A cell that
fails stops *Run All* and fails the test at once with its traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import browser_lab
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Console errors from resources outside 127.0.0.1 (the Colab badge, figures on GitHub in the
# markdown): this machine has no network, a student's browser loads them. Everything else fails.
EXTERNAL = ("raw.githubusercontent.com", "colab.research.google.com", "github.com")


def _wait(condition, seconds: float, what: str, poll: float = 0.5):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = browser_lab.missing()
    if reason:
        pytest.skip(f"browser test skipped: {reason}")
    root = tmp_path_factory.mktemp("lab")
    home = tmp_path_factory.mktemp("lab-home")
    # every cell in the page, not only those scrolled into view, so all outputs can be checked
    tracker = home / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    server = browser_lab.Lab(root, home, env={"DLSAUDIO_SMOKE": "1"})
    driver = browser_lab.chromium(home / "chromium")
    shots = Path(os.environ.get("BROWSER_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {shots}")
    yield server, driver, shots
    driver.quit()
    server.close()


def _js(driver, script: str, *args):
    return driver.execute_script(script, *args)


def _open_and_run(server, driver, notebook: Path, seconds: float) -> None:
    from selenium.webdriver.common.by import By

    shutil.copy(notebook, server.root / notebook.name)
    driver.get(server.url(f"lab/tree/{notebook.name}"))
    _wait(
        lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"), 60, "the notebook"
    )
    _wait(
        lambda: (
            "Idle"
            in _js(
                driver,
                "return document.querySelector('.jp-StatusBar-Widget') ? document.body.innerText : ''",
            )
        ),
        90,
        "the kernel to start",
    )
    menu = _wait(
        lambda: [
            e
            for e in driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel")
            if e.text == "Run"
        ],
        20,
        "the Run menu",
    )
    menu[0].click()
    item = _wait(
        lambda: [
            e
            for e in driver.find_elements(By.CSS_SELECTOR, ".lm-Menu-itemLabel")
            if e.text == "Run All Cells"
        ],
        20,
        "Run All Cells",
    )
    item[0].click()

    def finished():
        prompts = _js(
            driver,
            "return [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.innerText.trim())",
        )
        errors = _error_outputs(driver)
        if errors:  # Run All stops at a failing cell: the cells after it would never run
            raise AssertionError(f"a cell of {notebook.name} failed:\n{errors[0][-3000:]}")
        return prompts and all(p.startswith("[") and p[1:-2].isdigit() for p in prompts)

    _wait(finished, seconds, f"every cell of {notebook.name} to run", poll=2)
    # images and widget views settle after the last reply
    _wait(
        lambda: _js(
            driver,
            "return [...document.querySelectorAll('.jp-OutputArea-output img')].every(i => i.complete)",
        ),
        30,
        "the figures to load",
    )


def _error_outputs(driver) -> list[str]:
    """The text of every output that shows an error (a traceback, or an exception's name)."""
    return _js(
        driver,
        "return [...document.querySelectorAll('.jp-OutputArea-output[data-mime-type=\"application/vnd.jupyter.stderr\"]')]"
        ".map(e => e.innerText).filter(t => t.includes('Traceback') || /\\w+Error\\b/.test(t))",
    )


def _check_page(driver) -> dict:
    """What a student would check by eye, as a dict the assertions read."""
    errors = _error_outputs(driver)
    images = _js(
        driver,
        "return [...document.querySelectorAll('.jp-OutputArea-output img')].map(i => [i.naturalWidth, i.naturalHeight])",
    )
    text = _js(driver, "return document.querySelector('.jp-Notebook').innerText")
    return {"errors": errors, "images": images, "text": text, "console": _console_errors(driver)}


def _console_errors(driver) -> list[dict]:
    """The browser console's errors since the last call, but for resources outside 127.0.0.1."""
    return [
        entry
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and not any(host in entry["message"] for host in EXTERNAL)
    ]


def _assert_page_as_a_student_sees_it(driver, shots: Path, name: str, min_figures: int) -> dict:
    page = _check_page(driver)
    _shot(driver, shots, f"{name}_end")
    assert not page["errors"], page["errors"]
    assert len(page["images"]) >= min_figures, f"only {len(page['images'])} figures rendered"
    assert all(w > 0 and h > 0 for w, h in page["images"]), page["images"]
    assert "Error displaying widget" not in page["text"]
    assert not page["console"], page["console"]
    return page


def _shot(driver, shots: Path, name: str) -> None:
    driver.save_screenshot(str(shots / f"{name}.png"))


def _figure_of(driver, widget) -> str:
    """The source of the last figure inside a widget view ('' when none)."""
    return _js(
        driver,
        "const imgs = arguments[0].querySelectorAll('img'); return imgs.length ? imgs[imgs.length - 1].src : ''",
        widget,
    )


@pytest.mark.runs_notebook("week_03_ssl/seminar.ipynb")
def test_module3_seminar_renders_its_figures_and_working_widgets(lab):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    server, driver, shots = lab
    try:
        _open_and_run(server, driver, ROOT / "week_03_ssl" / "seminar.ipynb", 240)
        _assert_page_as_a_student_sees_it(driver, shots, "week03_seminar", min_figures=10)

        # the augmentation explorer: a dropdown and sliders that redraw its figure
        views = driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output .widget-vbox")
        assert len(views) >= 2, "the augmentation and neighbour explorers did not render"
        explorer = next(
            v for v in views if v.find_elements(By.CSS_SELECTOR, ".widget-dropdown select")
        )
        _js(driver, "arguments[0].scrollIntoView({block: 'center'})", explorer)
        _shot(driver, shots, "week03_augmentation_explorer")
        before = _wait(lambda: _figure_of(driver, explorer), 30, "the explorer's figure")
        dropdown = Select(explorer.find_element(By.CSS_SELECTOR, ".widget-dropdown select"))
        current = dropdown.first_selected_option.text
        dropdown.select_by_visible_text(next(o.text for o in dropdown.options if o.text != current))
        after = _wait(
            lambda: (src := _figure_of(driver, explorer)) and src != before and src,
            30,
            "the figure to change after choosing another augmentation",
        )
        handle = explorer.find_element(By.CSS_SELECTOR, ".widget-slider .noUi-handle")
        readout = explorer.find_element(By.CSS_SELECTOR, ".widget-slider .widget-readout")
        start = readout.text
        handle.click()
        handle.send_keys(Keys.ARROW_RIGHT)
        _wait(lambda: readout.text != start, 20, "the slider's value to move")
        _wait(
            lambda: (src := _figure_of(driver, explorer)) and src != after,
            30,
            "the figure to change after moving the slider",
        )
        _shot(driver, shots, "week03_augmentation_explorer_moved")
        late = _console_errors(driver)
        assert not late, late
    except BaseException:
        _shot(driver, shots, "week03_failure")
        raise


@pytest.mark.runs_notebook("week_11_low_resource/seminar.ipynb")
def test_module11_seminar_renders_its_figures_and_progress_bars(lab):
    from selenium.webdriver.common.by import By

    server, driver, shots = lab
    try:
        _open_and_run(server, driver, ROOT / "week_11_low_resource" / "seminar.ipynb", 400)
        _assert_page_as_a_student_sees_it(driver, shots, "week11_seminar", min_figures=3)
        # tqdm's notebook bars are widgets: they rendered as progress bars
        bars = driver.find_elements(
            By.CSS_SELECTOR,
            ".jp-OutputArea-output .widget-hprogress, .jp-OutputArea-output progress",
        )
        assert bars, "no progress bar rendered"
    except BaseException:
        _shot(driver, shots, "week11_failure")
        raise
