"""Where a sweep keeps Ray Tune's state: a local path made absolute, a cloud URI untouched."""

from pathlib import Path

from runner.driver.storage import absolute_storage, spill_dir


def test_a_relative_path_becomes_absolute(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert absolute_storage("runs") == str(tmp_path / "runs")


def test_a_uri_is_kept_as_written() -> None:
    # Path("s3://bucket/sweeps").resolve() would give "<cwd>/s3:/bucket/sweeps".
    assert absolute_storage("s3://bucket/sweeps") == "s3://bucket/sweeps"
    assert absolute_storage("gs://b/x/") == "gs://b/x/"


def test_unwritten_points_of_a_cloud_sweep_stay_on_local_disk(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    # One absolute place whatever the current directory (the store records it for resume).
    expected = tmp_path / "home" / ".sweepscope" / "spill" / "s1"
    assert spill_dir("s3://bucket/sweeps", "s1") == expected
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert spill_dir("s3://bucket/sweeps", "s1") == expected
    assert spill_dir(str(tmp_path / "shared"), "s1") == tmp_path / "shared" / "s1"
