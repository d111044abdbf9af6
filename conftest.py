"""Shared pytest fixtures and options for the speechbrain-fsce suite."""

import pytest
import torch


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run slow tests")
    parser.addoption("--device", action="store", default="cpu")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: pass --runslow to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture
def device(request):
    return request.config.getoption("--device")


@pytest.fixture(autouse=True)
def _few_threads():
    # Tests run small models: one thread avoids OpenMP spin-waits, which make
    # tiny ops on a busy 2-core machine up to 20x slower.
    torch.set_num_threads(1)
    yield
