"""The documented benchmarks at tiny size: memory, mixture, training speed, the side-by-side with the peer.
(The commands and how they are shrunk: test_docs.py.)"""

from test_docs import run_group


def test_documented_benchmarks_commands_run_at_tiny_size(data_dir, tmp_path, monkeypatch, capsys):
    run_group("benchmarks", data_dir, tmp_path, monkeypatch, capsys)
