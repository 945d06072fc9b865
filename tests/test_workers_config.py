"""The worker flags' checks: one line, exit 2, nothing written (Ray itself is not needed here)."""
import importlib.util

from tfpg import cli


def _main(capsys, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    code = cli.main(["--no-progress", *args])
    return code, capsys.readouterr().err.strip().splitlines()


def test_workers_without_ray_installed_say_how_to_install_it(capsys, tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find_spec(name, *a))
    code, lines = _main(capsys, tmp_path, monkeypatch, ["--workers", "2"])
    assert code == 2 and lines == ['train.py: error: --workers needs Ray, an optional extra: pip install -e ".[ray]"']
    assert list(tmp_path.iterdir()) == []


def test_worker_flags_need_workers_and_one_source_of_cpus(capsys, tmp_path, monkeypatch):
    code, lines = _main(capsys, tmp_path, monkeypatch, ["--envs-per-worker", "4"])
    assert code == 2 and lines == ["train.py: error: --envs-per-worker applies to Ray rollout workers: add --workers N"]
    if importlib.util.find_spec("ray") is not None:
        code, lines = _main(capsys, tmp_path, monkeypatch, ["--workers", "1", "--ray-address", "auto",
                                                             "--ray-num-cpus", "2"])
        assert code == 2 and "--ray-num-cpus sizes the local Ray instance" in lines[-1]
    assert list(tmp_path.iterdir()) == []
