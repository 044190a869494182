"""The camera model's documented chain at tiny size, and the benchmarks of untrained models.
(The commands and how they are shrunk: test_docs.py.)"""

from test_docs import run_group


def test_documented_camera_and_benchmarks_commands_run_at_tiny_size(data_dir, tmp_path, monkeypatch, capsys):
    run_group("camera_and_benchmarks", data_dir, tmp_path, monkeypatch, capsys)
