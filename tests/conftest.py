"""Shared fixtures.

CPU tests pin one thread: oversubscribing the cores makes inference 10-25x slower.
Benchmark data (real ALFWorld games, QA sets, ...) is read from ``$SKILLZERO_TEST_DATA``,
by default ``../shared/data`` beside the repository; tests that need it skip with the
reason when it is absent.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path

import pytest

from skillzero import registry

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_ENV = "SKILLZERO_TEST_DATA"


def shared_data_dir() -> Path:
    return Path(os.environ.get(DATA_ENV, REPO_ROOT.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The benchmark data folder; skips the test when it is not there."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"benchmark data not found at {path} (set ${DATA_ENV} to its location)")
    return path


@pytest.fixture
def fresh_registry():
    """Forget loaded plugins before and after the test (for tests that change sys.path
    or environment variables that control discovery)."""
    registry.reset_for_tests()
    yield registry
    registry.reset_for_tests()


@pytest.fixture
def plugin(request):
    """Register plugin objects by hand for one test: ``plugin(obj, name=...)``."""
    names: list[str] = []

    def _register(obj: object, name: str | None = None) -> str:
        registered = registry.register_plugin(obj, name)
        names.append(registered)
        return registered

    yield _register
    for name in names:
        registry.unregister_plugin(name)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen2 model folder with a locally trained tokenizer."""
    from helpers.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"))


@pytest.fixture(scope="session")
def sample_root(shared_data: Path) -> Path:
    """The ALFWorld sample games of the shared data folder (skips when absent)."""
    root = shared_data / "alfworld" / "sample"
    if not (root / "json_2.1.1" / "valid_unseen").is_dir():
        pytest.skip(f"ALFWorld sample games not found at {root}")
    return root


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray cluster for the session (2 CPUs, no dashboard, a small object store),
    shut down at the end; skips the test when the ``ray`` extra is not installed."""
    pytest.importorskip("ray", reason="Ray is not installed (the `ray` extra)")
    from skillzero.core.ray_cluster import init_ray

    for attempt in range(2):
        try:
            ray = init_ray(num_cpus=2, object_store_memory=128 * 2**20, log_to_driver=False)
            break
        except Exception:
            # Ray gives its node 30 s to register: on a machine loaded by other jobs a
            # start can miss that window; one more try
            import ray

            ray.shutdown()
            if attempt:
                raise
    yield ray
    ray.shutdown()


def _uses_ray(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return "ray_local" in getattr(item, "fixturenames", ()) or (
        callspec is not None and callspec.params.get("kind") == "ray"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order and group the suite for parallel runs (``pytest -n N --dist loadgroup``):

    - tests that use the session's local Ray cluster share one worker (two local
      clusters on one small machine compete for its cores and ports);
    - tests with a timeout above 30 minutes go first, so that the longest test does not
      start last and leave the other workers idle while it runs.
    """
    for item in items:
        if _uses_ray(item):
            item.add_marker(pytest.mark.xdist_group("ray"))

    def timeout_s(item: pytest.Item) -> float:
        marker = item.get_closest_marker("timeout")
        return float(marker.args[0]) if marker and marker.args else 0.0

    items.sort(key=lambda item: timeout_s(item) <= 1800)  # stable: the rest keep order
