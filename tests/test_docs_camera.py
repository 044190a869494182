"""The camera model's documented chain at tiny size: autoencoder, DiT, export, evaluation.
(The commands and how they are shrunk: test_docs.py.)"""

from test_docs import run_group


def test_documented_camera_commands_run_at_tiny_size(data_dir, tmp_path, monkeypatch, capsys):
    run_group("camera", data_dir, tmp_path, monkeypatch, capsys)
