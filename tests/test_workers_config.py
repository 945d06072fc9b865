"""The worker flags' checks: one line, exit 2, nothing written (Ray itself is not needed here)."""
import importlib.util

import numpy as np

from tfpg.cli import train as cli


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


def test_per_worker_epsilon_is_a_dqn_option_for_runs_with_workers(capsys, tmp_path, monkeypatch):
    code, lines = _main(capsys, tmp_path, monkeypatch, ["--algo", "reinforce", "--worker-eps", "0.4"])
    assert code == 2 and lines == ["train.py: error: --worker-eps does not apply to --algo reinforce"]
    code, lines = _main(capsys, tmp_path, monkeypatch, ["--algo", "dqn", "--worker-eps", "0.4"])
    assert code == 2 and lines == ["train.py: error: --worker-eps sets the epsilon of each Ray rollout worker: add "
                                   "--workers N, or use the --eps-* schedule"]
    code, lines = _main(capsys, tmp_path, monkeypatch, ["--algo", "dqn", "--worker-eps-alpha", "3"])
    assert code == 2 and lines == ["train.py: error: --worker-eps-alpha shapes the per-worker epsilons of --worker-eps: "
                                   "add --worker-eps E"]
    assert list(tmp_path.iterdir()) == []


def test_each_dqn_worker_explores_with_its_own_fixed_epsilon_once_the_warm_up_is_done():
    """Ape-X's epsilon_i = 0.4^(1 + 7 i / 3) for 4 workers; the warm-up stays uniformly random (epsilon 1)."""
    import dataclasses

    from tfpg.envs import make as envs_lib
    from tfpg.algos.dqn.algorithm import DQN
    from tfpg.algos.registry import build_config
    from tfpg.envs.stepping import VecStepper

    config = dataclasses.replace(build_config("dqn", "CartPole-v1", None, dict(num_envs=1, hidden=(8,))),
                                 learning_starts=5, worker_eps=0.4)   # as with --workers 4 (Ray not needed here)
    envs = envs_lib.make_train_envs(config)
    dqn = DQN(config, envs_lib.env_spaces(config.env_id), VecStepper(envs, config.env_id))
    asked = {"epsilon": 1.0}
    assert [dqn.worker_request(asked, i, 4) for i in range(4)] == [asked] * 4
    for _ in range(5):
        dqn.buffer.add(**dqn.collector.collect(epsilon=1.0).arrays())
    epsilons = [dqn.worker_request({"epsilon": 0.7}, i, 4)["epsilon"] for i in range(4)]
    np.testing.assert_allclose(epsilons, [0.4, 0.4 ** (1 + 7 / 3), 0.4 ** (1 + 14 / 3), 0.4 ** 8])
    assert dqn.worker_request({"epsilon": 0.7}, 0, 1)["epsilon"] == 0.4
    envs.close()


def test_more_workers_than_the_local_ray_instance_has_cpus_is_one_line_before_ray_starts(capsys, tmp_path, monkeypatch):
    """Ray would queue the 1000 one-CPU actors for ever; the check counts what the local instance will have."""
    if importlib.util.find_spec("ray") is None:
        return
    import sys

    from tfpg.backends.ray.checks import detected_cpus

    cpus = detected_cpus()
    code, lines = _main(capsys, tmp_path, monkeypatch, ["--algo", "ppo", "--workers", "1000"])
    assert code == 2 and lines == [f"train.py: error: --workers 1000 asks Ray for 1000 CPUs (one per worker) but the "
                                   f"local Ray instance will have {cpus} (this machine's CPUs): use --workers {cpus} "
                                   "or fewer, or set --ray-num-cpus if this machine has more CPUs than Ray counts"]
    code, lines = _main(capsys, tmp_path, monkeypatch, ["--algo", "ppo", "--workers", "3", "--ray-num-cpus", "2"])
    assert code == 2 and lines == ["train.py: error: --workers 3 asks Ray for 3 CPUs (one per worker) but "
                                   "--ray-num-cpus gives the local Ray instance 2: use --workers 2 or fewer, or raise "
                                   "--ray-num-cpus"]
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()   # refused before Ray started
    assert list(tmp_path.iterdir()) == []


def test_python_envs_on_workers_must_be_factories_that_pickle(tmp_path, monkeypatch):
    """An env instance is one env, and a factory capturing a lock cannot reach the workers: one line each from
    the checks every run passes (the command line's and the Python API's), before anything is written."""
    if importlib.util.find_spec("ray") is None:
        return
    import custom_envs
    import pytest

    from tfpg.algos.registry import build_config
    from tfpg.core.errors import ConfigError
    from tfpg.envs.python_envs import register_python_env
    from tfpg.training.checks import check_run

    monkeypatch.chdir(tmp_path)
    values = dict(workers=2, ray_num_cpus=2, progress=False)
    config = build_config("ppo", register_python_env(custom_envs.unpicklable_factory()), None, values)
    with pytest.raises(ConfigError) as error:
        check_run(config)
    assert str(error.value) == ("the env factory custom_envs.unpicklable_factory.<locals>.make cannot be sent to Ray "
                                "workers (cannot pickle '_thread.lock' object): define it at module level without "
                                "locks or open files, or use workers=0")
    config = build_config("ppo", register_python_env(custom_envs.Corridor()), None, values)
    with pytest.raises(ConfigError, match=r"^an env instance is one env; workers need a zero-argument factory .*"
                                          r"instead of custom_envs.Corridor\(\), or use workers=0$"):
        check_run(config)
    config = build_config("ppo", register_python_env(custom_envs.Corridor), None, values)
    check_run(config)   # the class itself: a factory that pickles (by reference to its module)
    assert list(tmp_path.iterdir()) == []
