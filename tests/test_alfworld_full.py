"""The ALFWorld plugin on the full game archives (slow).

The archives in ``$SKILLZERO_TEST_DATA/alfworld`` are extracted once into a cache folder
(``$SKILLZERO_TEST_CACHE``, default ``~/.cache/skillzero-test``), with ``logic/`` copied
beside them, which gives the layout ``alfworld-download`` writes. A marker file records
a completed extraction, so later runs start at once. Nothing is written into the
repository.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from skillzero.contracts.env import Task
from skillzero.plugins.alfworld.check import play_walkthroughs
from skillzero.plugins.alfworld.games import (
    count_by_type,
    list_tasks,
    read_walkthrough,
    scan_split,
)

os.environ.setdefault("OMP_NUM_THREADS", "1")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

GAMES_ARCHIVE = "alfworld_json_2.1.1_games_tw-pddl_v2.1.3.tar.xz"
TRAJ_ARCHIVE = "alfworld_json_2.1.1_eval_traj_data.tar.xz"
LEGACY_ARCHIVE = "alfworld_json_2.1.1_eval_games_legacy_v2.1.1.tar.xz"
MARKER = ".skillzero-extracted.json"

OFFICIAL = {
    "train": {"pick": 790, "look": 308, "clean": 650, "heat": 459, "cool": 533, "pick_two": 813},
    "valid_seen": {"pick": 35, "look": 13, "clean": 27, "heat": 16, "cool": 25, "pick_two": 24},
    "valid_unseen": {"pick": 24, "look": 18, "clean": 31, "heat": 23, "cool": 21, "pick_two": 17},
}


def _cache_root() -> Path:
    base = os.environ.get("SKILLZERO_TEST_CACHE") or Path.home() / ".cache" / "skillzero-test"
    return Path(base)


def _extracted(source: Path, archives: list[str], name: str, logic: bool) -> Path:
    """``archives`` (from ``source``) extracted into ``<cache>/<name>``, once."""
    missing = [a for a in archives if not (source / a).is_file()]
    if missing:
        pytest.skip(f"ALFWorld archives not found in {source}: {', '.join(missing)}")
    target = _cache_root() / name
    stamp = {a: (source / a).stat().st_size for a in archives}
    marker = target / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == stamp:
        return target
    partial = target.with_name(f"{name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for archive in archives:
        with tarfile.open(source / archive, "r:xz") as handle:
            handle.extractall(partial, filter="data")
    if logic and (source / "logic").is_dir():
        shutil.copytree(source / "logic", partial / "logic")
    (partial / MARKER).write_text(json.dumps(stamp))
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


@pytest.fixture(scope="session")
def full_root(shared_data: Path) -> Path:
    """All 4,027 games plus the eval splits' traj_data, in the alfworld-download layout."""
    return _extracted(
        shared_data / "alfworld", [GAMES_ARCHIVE, TRAJ_ARCHIVE], "alfworld", logic=True
    )


@pytest.fixture(scope="session")
def legacy_root(shared_data: Path) -> Path:
    return _extracted(shared_data / "alfworld", [LEGACY_ARCHIVE], "alfworld-legacy", False)


def test_layout_is_what_alfworld_download_writes(full_root: Path) -> None:
    assert (full_root / "logic" / "alfred.pddl").is_file()
    assert (full_root / "logic" / "alfred.twl2").is_file()
    for split in ("train", "valid_seen", "valid_unseen"):
        assert (full_root / "json_2.1.1" / split).is_dir()
    # train games ship without traj_data.json: the task type comes from the folder name
    assert not list((full_root / "json_2.1.1" / "train").glob("*/*/traj_data.json"))


@pytest.mark.parametrize("split", list(OFFICIAL))
def test_official_game_counts(full_root: Path, split: str) -> None:
    tasks = list_tasks({"data_dir": str(full_root)}, split)
    assert len(tasks) == sum(OFFICIAL[split].values())  # 3553, 140, 134
    assert count_by_type(tasks) == OFFICIAL[split]
    assert len({t.task_id for t in tasks}) == len(tasks)


def test_valid_train_count(full_root: Path) -> None:
    assert len(list_tasks({"data_dir": str(full_root)}, "valid_train")) == 200


def test_solvable_filter_on_the_legacy_release(legacy_root: Path, full_root: Path) -> None:
    """The legacy eval files include unsolvable games, and in valid_unseen one movable and
    two Sliced trials (187 and 195 files); what ALFWorld's rules keep is exactly the 140
    and 134 official games."""
    cases = (("valid_seen", 187, 0, 140), ("valid_unseen", 195, 3, 134))
    for split, files, skipped, solvable in cases:
        folder = legacy_root / "json_2.1.1_legacy_tw-pddl" / split
        assert len(list(folder.glob("*/*/game.tw-pddl"))) == files
        records = scan_split(folder)
        assert len(records) == files - skipped
        assert not any("Sliced" in r.relpath or "movable" in r.relpath for r in records)
        chosen = {r.relpath for r in records if r.solvable}
        assert len(chosen) == solvable
        current = {
            t.task_id.split("/", 2)[2] for t in list_tasks({"data_dir": str(full_root)}, split)
        }
        assert chosen == current


def test_user_cache_folder_is_found(
    full_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user who ran ``alfworld-download`` (data in ~/.cache/alfworld) needs no setting."""
    home = tmp_path / "home"
    (home / ".cache").mkdir(parents=True)
    (home / ".cache" / "alfworld").symlink_to(full_root, target_is_directory=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    assert len(list_tasks({}, "train")) == 3553
    assert len(list_tasks({"data_dir": None}, "valid_seen")) == 140


def test_every_eval_walkthrough_wins_through_the_pool(full_root: Path) -> None:
    pytest.importorskip("textworld", reason="needs the alfworld extra (textworld)")
    tasks: list[Task] = []
    for split in ("valid_seen", "valid_unseen"):
        tasks += list_tasks({"data_dir": str(full_root)}, split)
    assert len(tasks) == 274
    records = play_walkthroughs(tasks, {}, workers=2, envs=8, backend="process")
    lost = [r["game"] for r in records if not r["won"]]
    assert not lost, f"{len(lost)} walkthroughs did not win, e.g. {lost[:3]}"
    for task, record in zip(tasks, records, strict=True):
        assert record["game"] == task.task_id
        assert record["steps"] == len(read_walkthrough(task.payload["game_file"]))
        assert "Your task is to: " in record["first_observation"]
        assert "error" not in record
