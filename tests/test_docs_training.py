"""The default model's documented chain at tiny size: autoencoder, DiT, frames model, fine-tuning on
a folder of videos, and the scripts that evaluate, export, benchmark and plot them.
(The commands and how they are shrunk: test_docs.py.)"""

from test_docs import run_group


def test_documented_training_commands_run_at_tiny_size(data_dir, tmp_path, monkeypatch, capsys):
    run_group("training", data_dir, tmp_path, monkeypatch, capsys)
