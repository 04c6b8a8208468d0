"""Notebook tooling and the committed notebooks: clean, current, linked, and student copies that stop where they should."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from dlsaudio import notebook_runner, notebook_stamps, notebooks, repo

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = notebooks.find_notebooks(ROOT)
SOLUTIONS = [p for p in NOTEBOOKS if p.name.endswith(notebooks.SOLUTION_SUFFIX)]
READMES = sorted([ROOT / "README.md", *ROOT.glob("week_*/README.md")])


def _nb(cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    return nb


# ---------------------------------------------------------------- the generator


def test_make_student_replaces_code_region_at_its_indentation():
    code = "def f(x):\n    '''Add one.'''\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n    ### END SOLUTION\n\nprint(f(1))"
    student = notebooks.make_student(_nb([nbformat.v4.new_code_cell(code)]))
    assert student.cells[0].source == (
        "def f(x):\n    '''Add one.'''\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\nprint(f(1))"
    )


def test_make_student_replaces_markdown_answer_and_keeps_input():
    md = "Why?\n### BEGIN SOLUTION\nBecause of the per-row denominator.\n### END SOLUTION\nDone."
    solution = _nb([nbformat.v4.new_markdown_cell(md)])
    student = notebooks.make_student(solution)
    assert student.cells[0].source == "Why?\n*YOUR ANSWER HERE*\nDone."
    assert solution.cells[0].source == md


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("### BEGIN SOLUTION\nx = 1", "never closed"),
        ("x = 1\n### END SOLUTION", "without a matching"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "nested"),
    ],
)
def test_make_student_rejects_unbalanced_markers(source, message):
    with pytest.raises(ValueError, match=message):
        notebooks.make_student(_nb([nbformat.v4.new_code_cell(source)]), name="hw.ipynb")


_MISTYPED = [
    ("## BEGIN SOLUTION", "## END SOLUTION"),
    ("#### BEGIN SOLUTION", "#### END SOLUTION"),
    ("###BEGIN SOLUTION", "###END SOLUTION"),
    ("### BEGIN SOLUTION", "## END SOLUTION"),
    ("### BEGIN SOLUTION", "#### END SOLUTION"),
    ("### BEGIN SOLUTION", "###END SOLUTION"),
    ("### BEGIN SOLUTIONS", "### END SOLUTION"),
    ("### BEGIN SOLUTION", "### END SOLUTIONS"),
]


@pytest.mark.parametrize("kind", ["code", "markdown"])
@pytest.mark.parametrize(("begin", "end"), _MISTYPED)
def test_make_student_rejects_a_line_that_only_looks_like_a_marker(kind, begin, end):
    good = nbformat.v4.new_code_cell(
        "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"
    )
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    bad = make(f"Task 2\n{begin}\nsecret = 42\n{end}")
    bad.id = "task-two"
    bad_line, number = (begin, 2) if begin != notebooks.BEGIN else (end, 4)
    with pytest.raises(
        ValueError,
        match=rf"cell 1 \(id task-two\), line {number}: .*looks like a solution marker",
    ):
        notebooks.make_student(_nb([good, bad]), name="hw.ipynb")


def test_prose_about_a_solution_is_not_a_marker():
    md = "The end solution is below.\n### BEGIN SOLUTION\nIt is 42.\n### END SOLUTION"
    student = notebooks.make_student(_nb([nbformat.v4.new_markdown_cell(md)]))
    assert student.cells[0].source == f"The end solution is below.\n{notebooks.ANSWER_STUB}"


def test_make_student_needs_a_region():
    with pytest.raises(ValueError, match="no '### BEGIN SOLUTION' region"):
        notebooks.make_student(_nb([nbformat.v4.new_code_cell("x = 1")]), name="hw.ipynb")


def test_clean_strips_outputs_and_stamps_badge_and_install():
    cell = nbformat.v4.new_code_cell("1 + 1")
    cell.outputs = [
        nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=3)
    ]
    cell.execution_count = 3
    cell.metadata = {"scrolled": True, "tags": ["keep"]}
    nb = notebooks.clean(_nb([cell]), "week_00/demo.ipynb")
    assert [c.id for c in nb.cells[:2]] == [notebooks.BADGE_ID, notebooks.INSTALL_ID]
    assert repo.colab_url("week_00/demo.ipynb") in nb.cells[0].source
    body = nb.cells[2]
    assert body.outputs == [] and body.execution_count is None
    assert body.metadata == {"tags": ["keep"]}
    again = notebooks.clean(nb, "week_00/demo.ipynb")
    assert len(again.cells) == 3, "cleaning twice must not add a second badge or install cell"


def test_build_and_check_round_trip(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "dlsaudio").mkdir()
    (tmp_path / "week_01").mkdir()
    code = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"
    nbformat.write(
        _nb([nbformat.v4.new_code_cell(code)]), tmp_path / "week_01" / "homework_solution.ipynb"
    )
    assert notebooks.check(tmp_path), "an unbuilt folder must be reported stale"
    changed = notebooks.build(tmp_path)
    assert {p.name for p in changed} == {"homework_solution.ipynb", "homework.ipynb"}
    assert notebooks.check(tmp_path) == []
    student = tmp_path / "week_01" / "homework.ipynb"
    student.write_text(student.read_text().replace("NotImplementedError", "Exception"))
    assert notebooks.check(tmp_path) == [student]


@pytest.mark.parametrize("text", ["", "{ not json"], ids=["zero bytes", "not JSON"])
def test_build_names_a_solution_notebook_that_is_not_a_notebook(
    tmp_path, text, monkeypatch, capsys
):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "dlsaudio").mkdir()
    (tmp_path / "week_01").mkdir()
    (tmp_path / "week_01" / "homework_solution.ipynb").write_text(text)
    message = (
        rf"week_01/homework_solution\.ipynb \({len(text)} bytes\): not a readable notebook "
        r"\(.*\); restore it from git \(git checkout -- week_01/homework_solution\.ipynb\)"
    )
    with pytest.raises(ValueError, match=message):
        notebooks.build(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert notebooks.main(["build"]) == 1
    assert re.search(message, capsys.readouterr().err)


def _course(tmp_path, answer="return 1"):
    """A one-homework repository under tmp_path, built; returns (solution, student) paths."""
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "dlsaudio").mkdir(exist_ok=True)
    (tmp_path / "week_01").mkdir(exist_ok=True)
    solution = tmp_path / "week_01" / "homework_solution.ipynb"
    code = f"def f():\n    ### BEGIN SOLUTION\n    {answer}\n    ### END SOLUTION"
    nbformat.write(
        _nb([nbformat.v4.new_markdown_cell("# Homework"), nbformat.v4.new_code_cell(code)]),
        solution,
    )
    notebooks.build(tmp_path)
    return solution, tmp_path / "week_01" / "homework.ipynb"


def _fill_in(student):
    """Do what a student does: replace the stub with an answer."""
    text = student.read_text().replace("raise NotImplementedError()", "return 2  # mine")
    student.write_text(text)
    return text


def _change_solution(solution):
    nb = nbformat.read(solution, as_version=4)
    nb.cells[2].source = "# Homework 1"
    nbformat.write(nb, solution)


def test_build_refuses_to_overwrite_a_filled_in_student_notebook(tmp_path):
    solution, student = _course(tmp_path)
    mine = _fill_in(student)
    _change_solution(solution)
    with pytest.raises(
        notebooks.StudentEditsError,
        match=r"week_01/homework\.ipynb: edited or added cells",
    ):
        notebooks.build(tmp_path)
    assert student.read_text() == mine
    assert not list(student.parent.glob("*.bak*"))

    changed = notebooks.build(tmp_path, force=True)
    assert student in changed
    assert (student.parent / "homework.ipynb.bak").read_text() == mine, "the answers are kept"
    assert "# YOUR CODE HERE" in student.read_text() and notebooks.check(tmp_path) == []


def test_build_command_refuses_and_names_the_edits(tmp_path, monkeypatch, capsys):
    solution, student = _course(tmp_path)
    mine = _fill_in(student)
    _change_solution(solution)
    monkeypatch.chdir(tmp_path)
    assert notebooks.main(["build"]) == 1
    err = capsys.readouterr().err
    assert "homework.ipynb: edited or added cells" in err and "--force" in err
    assert student.read_text() == mine


def test_build_rewrites_its_own_unedited_output(tmp_path):
    solution, student = _course(tmp_path)
    _change_solution(solution)
    assert student in notebooks.build(tmp_path)
    assert "# Homework 1" in student.read_text()
    assert not list(student.parent.glob("*.bak*"))


def test_student_edits_tells_answers_from_generated_cells(tmp_path):
    solution, student = _course(tmp_path)
    generated = nbformat.read(student, as_version=4)
    assert notebook_stamps.student_edits(student) == []

    ran = nbformat.read(student, as_version=4)
    ran.cells[1].outputs = [nbformat.v4.new_output("stream", text="hi")]
    nbformat.write(ran, student)
    assert notebook_stamps.student_edits(student) == [
        "outputs of a run in cells colab-install (index 1)"
    ]

    new_ids = nbformat.from_dict(generated)  # an editor that renews cell ids loses nothing
    for index, cell in enumerate(new_ids.cells):
        cell.id = f"renewed-{index}"
    nbformat.write(new_ids, student)
    assert notebook_stamps.student_edits(student) == []

    deleted = nbformat.from_dict(generated)
    del deleted.cells[3]
    nbformat.write(deleted, student)
    assert notebook_stamps.student_edits(student) == [f"deleted cells {generated.cells[3].id}"]

    student.write_text("<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> theirs\n")
    assert notebook_stamps.student_edits(student)[0].startswith("not a readable notebook")

    unstamped = nbformat.from_dict(generated)
    del unstamped.metadata[notebook_stamps.STAMP_KEY]
    nbformat.write(unstamped, student)
    assert notebook_stamps.student_edits(student, wanted=generated) == []
    unstamped.cells[3].source = "def f():\n    return 2"
    nbformat.write(unstamped, student)
    assert notebook_stamps.student_edits(student, wanted=generated) == [
        "no build stamp, so its cells cannot be told from a student's answers"
    ]


def test_check_advises_course_staff_only(tmp_path, monkeypatch, capsys):
    solution, student = _course(tmp_path)
    _fill_in(student)
    monkeypatch.chdir(tmp_path)
    assert notebooks.main(["check"]) == 1
    out, err = capsys.readouterr()
    assert "out of date: week_01/homework.ipynb (holds edits: edited or added cells" in out
    assert notebooks.STALE_ADVICE in err
    assert err.startswith("course staff: regenerate with `python -m dlsaudio.notebooks build`")
    assert "students: do not run it" in err and "would replace your answers" in err


def test_install_cell_does_nothing_off_colab_and_installs_on_colab(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append((a, k)))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(notebooks.install_source(), {})
    assert calls == []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    exec(notebooks.install_source(), {})
    ((args, kwargs),) = calls
    assert args[0][-1] == f"dlsaudio[mdc] @ {repo.PIP_URL}" and kwargs["check"] is True


# ---------------------------------------------------------------- the committed notebooks


def test_course_has_its_notebooks():
    names = {p.relative_to(ROOT).as_posix() for p in NOTEBOOKS}
    for week in ("week_03_ssl", "week_11_low_resource"):
        for name in ("seminar.ipynb", "homework_solution.ipynb", "homework.ipynb"):
            assert f"{week}/{name}" in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_notebook_is_stored_clean(path):
    raw = path.read_text(encoding="utf-8")
    assert "base64," not in raw and '"image/png"' not in raw, (
        "images belong in images/, not in the notebook"
    )
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    ids = [c.get("id") for c in nb.cells]
    assert all(ids) and len(set(ids)) == len(ids), "every cell needs a unique stable id"
    for cell in nb.cells:
        assert "attachments" not in cell
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_committed_notebooks_are_current():
    stale = notebooks.check(ROOT)
    assert stale == [], f"stale {stale}; {notebooks.STALE_ADVICE}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_badge_and_install_cell_follow_the_repository(path):
    nb = nbformat.read(path, as_version=4)
    rel = path.relative_to(ROOT).as_posix()
    assert nb.cells[0].source == notebooks.badge_source(rel)
    assert nb.cells[1].source == notebooks.install_source()
    assert repo.PIP_URL in nb.cells[1].source


def test_pyproject_names_the_same_repository():
    homepage = re.search(r'^Homepage = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert homepage and homepage.group(1) == repo.REPO_URL


_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)[^)]*\)|<img[^>]*\bsrc=\"([^\"]+)\"")
_COLAB = re.compile(r"https://colab\.research\.google\.com/github/([^)\s\"]+)")


def _documents():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        yield path, "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for path in READMES:
        yield path, path.read_text(encoding="utf-8")


def test_every_linked_image_exists():
    checked = 0
    for path, text in _documents():
        for match in _IMAGE.finditer(text):
            url = match.group(1) or match.group(2)
            if url.startswith(repo.RAW_URL + "/"):
                target = ROOT / url[len(repo.RAW_URL) + 1 :]
            elif url.startswith("http"):
                continue
            else:
                target = (path.parent / url).resolve()
            assert target.is_file(), f"{path.relative_to(ROOT)} links a missing image: {url}"
            checked += 1
    assert checked > 0, "the course pages should link at least one image"


def test_every_colab_badge_opens_an_existing_notebook_of_this_repository():
    prefix = f"{repo.GITHUB_REPO}/blob/{repo.BRANCH}/"
    badges = 0
    for path, _ in _documents():
        text = (
            path.read_text(encoding="utf-8")
            if path.suffix == ".md"
            else "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
        )
        for target in _COLAB.findall(text):
            assert target.startswith(prefix), (
                f"{path.relative_to(ROOT)}: badge points elsewhere: {target}"
            )
            assert (ROOT / target[len(prefix) :]).is_file(), (
                f"{path.relative_to(ROOT)}: no notebook {target}"
            )
            badges += 1
    assert badges >= len(NOTEBOOKS)


# ---------------------------------------------------------------- student notebooks


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.parent.name)
def test_student_notebook_has_no_solution(solution):
    student = nbformat.read(notebooks.student_path(solution), as_version=4)
    text = "\n".join(c.source for c in student.cells)
    assert notebooks.BEGIN not in text and notebooks.END not in text
    assert text.count("# YOUR CODE HERE") >= 2


@pytest.mark.slow
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.parent.name)
def test_student_notebook_runs_until_its_first_task(solution, tmp_path, monkeypatch):
    """Executed as a student receives it, the notebook runs cleanly up to the first task and
    stops there with NotImplementedError, not earlier and not with another error."""
    from nbclient.exceptions import CellExecutionError

    student = notebooks.student_path(solution)
    nb = nbformat.read(student, as_version=4)
    first_task = next(
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and "# YOUR CODE HERE" in c.source
    )
    monkeypatch.setenv("DLSAUDIO_SMOKE", "1")
    client = notebook_runner.notebook_client(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(solution.parent)}},
    )
    with pytest.raises(CellExecutionError) as info:
        client.execute()
    assert info.value.ename == "NotImplementedError", (
        f"stopped with {info.value.ename}: {info.value.evalue}"
    )
    ran = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.execution_count]
    first_check = next(
        i
        for i, c in enumerate(nb.cells)
        if i > first_task and c.cell_type == "code" and "check" in c.source
    )
    assert first_task <= max(ran) <= first_check, (
        f"stopped at cell {max(ran)}; the first task is cell {first_task}, its self-check cell {first_check}"
    )


def test_run_notebook_saves_the_executed_notebook_and_its_figures(tmp_path):
    nb = _nb(
        [
            nbformat.v4.new_code_cell("import os\nprint(os.environ['DLSAUDIO_SMOKE'])"),
            nbformat.v4.new_code_cell(
                "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([0, 1], [1, 0])\nplt.show()"
            ),
            nbformat.v4.new_code_cell("open('made.txt', 'w').write('x')"),
        ]
    )
    source = tmp_path / "demo.ipynb"
    nbformat.write(nb, source)
    result = notebook_runner.run_notebook(source, tmp_path / "out")
    executed = nbformat.read(result["executed"], as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == "1"
    assert len(result["figures"]) == 1 and Path(result["figures"][0]).read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "out" / "made.txt").is_file(), "the kernel must run inside the output folder"


def test_run_notebook_names_a_missing_notebook(tmp_path):
    with pytest.raises(FileNotFoundError, match="notebook not found: .*nope.ipynb"):
        notebook_runner.run_notebook(tmp_path / "nope.ipynb", tmp_path)


class _Clock:
    """A stand-in for ``time.monotonic`` that moves only when a fake wait asks it to."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


class _Channel:
    """A shell channel whose message becomes readable after ``ready_after`` polls. A wait that
    finds nothing advances the fake clock by the timeout it was given and raises Empty, so no
    real time passes."""

    def __init__(self, ready_after: int | None, clock: _Clock) -> None:
        self.ready_after, self.clock, self.timeouts = ready_after, clock, []

    async def get_msg(self, timeout=None):
        from queue import Empty

        self.timeouts.append(timeout)
        if self.ready_after is not None and len(self.timeouts) > self.ready_after:
            return {"msg_type": "execute_reply"}
        self.clock.now += timeout
        raise Empty


@pytest.fixture
def clock(monkeypatch):
    fake = _Clock()
    monkeypatch.setattr(notebook_runner, "time", fake)
    return fake


def test_reply_wait_polls_in_slices_until_the_message_is_there(clock):
    import asyncio

    channel = _Channel(ready_after=3, clock=clock)
    get_msg = notebook_runner.sliced_get_msg(channel.get_msg, slice_seconds=0.01)
    assert asyncio.run(get_msg(timeout=None)) == {"msg_type": "execute_reply"}
    assert channel.timeouts == [0.01] * 4, (
        "each wait is one short slice, then the socket is polled afresh"
    )


def test_reply_wait_still_times_out_at_the_cells_timeout(clock):
    """Waits come in slices no longer than slice_seconds, the last one cut to what is left of
    the cell's timeout, and Empty is raised once that timeout is used up (on a fake clock:
    0.375 and 1.0 are exact in binary, so the slices are exact too)."""
    import asyncio
    from queue import Empty

    channel = _Channel(ready_after=None, clock=clock)
    get_msg = notebook_runner.sliced_get_msg(channel.get_msg, slice_seconds=0.375)
    with pytest.raises(Empty):
        asyncio.run(get_msg(timeout=1.0))
    assert channel.timeouts == [0.375, 0.375, 0.25]
    assert clock.now == 1.0, "Empty comes as soon as the cell's timeout is used up, not later"


def test_headless_client_waits_for_replies_in_slices():
    nb = _nb([nbformat.v4.new_code_cell("x = 1")])
    client = notebook_runner.notebook_client(nb, timeout=60, kernel_name="python3")
    with client.setup_kernel():
        assert client.kc.shell_channel.get_msg.__name__ == "get_msg_in_slices"
        client.execute_cell(nb.cells[0], 0)
    assert nb.cells[0].execution_count == 1


@pytest.mark.skipif(sys.platform == "win32", reason="no Unix sockets")
def test_headless_kernels_listen_on_sockets_of_their_own_not_on_tcp_ports():
    """A TCP port picked for a kernel can be taken by another process before the kernel binds
    it (a failed CI run: "Address already in use", "Kernel died before replying to
    kernel_info"); a kernel of the package's client listens on Unix sockets in a private folder,
    which goes when the kernel does."""
    import os
    import stat

    nb = _nb([nbformat.v4.new_code_cell("x = 1")])
    client = notebook_runner.notebook_client(nb, timeout=60, kernel_name="python3")
    with client.setup_kernel():
        info = client.km.get_connection_info()
        assert info["transport"] == "ipc"
        folder = Path(info["ip"]).parent
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        sockets = [f"{info['ip']}-{info[name]}" for name in ("shell_port", "iopub_port")]
        assert all(stat.S_ISSOCK(os.stat(s).st_mode) for s in sockets)
        client.execute_cell(nb.cells[0], 0)
        km = client.km
    assert nb.cells[0].execution_count == 1
    del client, km
    import gc

    gc.collect()
    assert not folder.exists()


def test_a_manager_given_a_transport_or_a_kernel_is_left_as_it_is():
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    km.transport = "ipc"
    km.ip = "somewhere/k"
    assert notebook_runner.use_private_sockets(km) is False
    assert km.ip == "somewhere/k"


def test_nbval_kernels_listen_on_sockets_of_their_own():
    import nbval.kernel

    km = nbval.kernel.KernelManager(kernel_name="python3")
    assert km.transport == ("tcp" if sys.platform == "win32" else "ipc")


@pytest.mark.slow
def test_seminar_runs_without_a_language_token_and_with_lora(tmp_path, monkeypatch):
    """The module-11 seminar with LANGUAGE = None (no language token in the labels or the
    prefix, no detection in generate) and with LoRA, the two options its text offers, runs end to
    end in smoke mode and saves a plain Whisper."""
    path = ROOT / "week_11_low_resource" / "seminar.ipynb"
    nb = nbformat.read(path, as_version=4)
    params = next(c for c in nb.cells if c.cell_type == "code" and "LORA_RANK = " in c.source)
    changes = [
        ('LANGUAGE = "kk"', "LANGUAGE = None"),
        ("LORA_RANK = None", "LORA_RANK = 8"),
        # a few steps are enough to run every cell; a checkpoint is written mid-run
        ("MAX_STEPS = pick(full=500, smoke=70)", "MAX_STEPS = pick(full=500, smoke=4)"),
        ("WARMUP_STEPS = pick(full=50, smoke=10)", "WARMUP_STEPS = pick(full=50, smoke=1)"),
        ("EVAL_EVERY = pick(full=250, smoke=35)", "EVAL_EVERY = pick(full=250, smoke=2)"),
        (
            "CHECKPOINT_EVERY = pick(full=100, smoke=35)",
            "CHECKPOINT_EVERY = pick(full=100, smoke=2)",
        ),
    ]
    for old, new in changes:
        assert old in params.source
        params.source = params.source.replace(old, new)
    monkeypatch.setenv("DLSAUDIO_SMOKE", "1")
    client = notebook_runner.notebook_client(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    printed = "\n".join(
        out.get("text", "") for c in nb.cells if c.cell_type == "code" for out in c.outputs
    )
    assert "generation: None transcribe" in printed
    transcribe, no_timestamps = 50359, 50363
    assert f"labels[0]: [{transcribe}, {no_timestamps}," in printed  # no language token
    assert re.search(r"detected: \w+ \d+%, \w+ \d+%, \w+ \d+%", printed)
    found = re.search(r"training ([\d,]+) of ([\d,]+) parameters", printed)
    trainable, total = (int(n.replace(",", "")) for n in found.groups())
    assert 0 < trainable < total / 10
    saved = tmp_path / "outputs" / "whisper-ky"
    assert (saved / "model.safetensors").is_file() and not (saved / "adapter_config.json").exists()
    assert (saved / "last.pt").is_file()


def test_headless_client_caps_the_output_of_a_cell_but_keeps_its_error():
    nb = _nb(
        [
            nbformat.v4.new_code_cell(
                "for i in range(2000):\n    print('x' * 100)\nraise ValueError('last')"
            ),
        ]
    )
    client = notebook_runner.notebook_client(
        nb, timeout=60, kernel_name="python3", max_output_chars=5_000, allow_errors=True
    )
    client.execute()
    outputs = nb.cells[0].outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert len(text) < 10_000 and "[output cut at 5000 characters]" in text
    assert outputs[-1].output_type == "error" and outputs[-1].evalue == "last"
