import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _isolated_nsml_home(tmp_path_factory, monkeypatch):
    """No test touches the user's ~/.nsml_local."""
    monkeypatch.setenv("NSML_LOCAL_HOME", str(tmp_path_factory.mktemp("nsml_home")))
