"""Where the course repository lives. Written once; badges and install cells follow it.

After a fork or a move, change :data:`GITHUB_REPO` (and ``[project.urls]`` in
``pyproject.toml``), then run ``python -m dlsaudio.notebooks build``: the install cells and
badges are regenerated and ``tests/test_notebooks.py`` checks that they agree.
"""

from __future__ import annotations

GITHUB_REPO = "DeepLearningSchool/dlsaudio"
BRANCH = "main"

REPO_URL = f"https://github.com/{GITHUB_REPO}"
PIP_URL = f"git+{REPO_URL}@{BRANCH}"
RAW_URL = f"https://raw.githubusercontent.com/{GITHUB_REPO}/{BRANCH}"
COLAB_BADGE_SVG = "https://colab.research.google.com/assets/colab-badge.svg"


def colab_url(notebook_path: str) -> str:
    """Colab address of a notebook given by its path inside the repository."""
    return f"https://colab.research.google.com/github/{GITHUB_REPO}/blob/{BRANCH}/{notebook_path}"


def colab_badge(notebook_path: str) -> str:
    """Markdown for an 'Open in Colab' badge."""
    return f"[![Open In Colab]({COLAB_BADGE_SVG})]({colab_url(notebook_path)})"


def image_url(image_path: str) -> str:
    """Absolute address of a file under ``images/``; renders on Colab, GitHub and locally with network."""
    return f"{RAW_URL}/{image_path}"
