"""--algo ppo --backend graph: PPO's rollout, GAE and minibatch epochs of K agents in one compiled program.

Each trainer compiles its own XLA program (seconds each), so three runs are shared through one module
fixture: the learning run of two agents, and each agent's seed alone for its first iterations.
"""
import json
from types import SimpleNamespace
import os

import numpy as np
import pytest
import tensorflow as tf

from tfpg.algos import REGISTRY
from tfpg.config.run import build_config
from tfpg.training.graph_trainer import GraphTrainer
from tfpg.maths.losses import clipped_surrogate_loss, entropy_loss, value_estimation_loss

# The zoo's CartPole settings (preset ppo-cartpole: 8 envs x 32 steps, 20 epochs of one minibatch, lr and clip
# range linear to 0 over the budget), in-graph, with a 50k-step budget and a reward_100 of 200 as the goal.
LEARN = dict(backend="graph", total_steps=50_000, stop_reward=200.0, progress=False)
EARLY_STEPS = 3 * 8 * 32   # the first three iterations: compared before float32 round-off between layouts grows


def train(tmp, name, stop_after=None, record_at=None, export=False, **overrides):
    """A graph PPO run of preset ppo-cartpole with LEARN; `stop_after` ends it after that many env steps (the
    config, so the schedules, unchanged); `record_at` keeps every agent's weights and episodes at that step."""
    config = build_config(None, None, "ppo-cartpole", {**LEARN, "run_name": name, "export": export,
                                                       "logdir": str(tmp / "runs"), "export_dir": str(tmp / "models"),
                                                       **overrides})
    trainer = GraphTrainer(REGISTRY["ppo"], config, str(tmp / "runs" / name),
                           str(tmp / "models" / name) if export else None)
    trainer.recorded = None
    if stop_after is not None:
        trainer.should_stop = lambda: trainer.progress.env_steps >= stop_after
    if record_at is not None:
        after_iteration = trainer._after_iteration

        def recording(*out):
            after_iteration(*out)
            if trainer.progress.env_steps == record_at:
                trainer.recorded = [(weights(trainer, k), list(a.stats.recent), a.stats.episodes)
                                    for k, a in enumerate(trainer.agents)]

        trainer._after_iteration = recording
    return trainer, trainer.run()


def weights(trainer, k=0):
    """Agent k's policy and critic weights as numpy arrays."""
    learner = trainer.learner
    return [v[k].numpy() for v in learner.policy.variables + learner.critic.variables]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Seeds 0 and 1 as one K = 2 run to reward_100 >= 200 (exported), and each seed alone for 3 iterations."""
    tmp = tmp_path_factory.mktemp("graph_ppo")
    both = train(tmp, "both", seed=0, num_seeds=2, export=True, record_at=EARLY_STEPS)
    alone = [train(tmp, f"alone{seed}", seed=seed, stop_after=EARLY_STEPS)[0] for seed in (0, 1)]
    return dict(tmp=tmp, both=both, alone=alone)


def test_ppo_learns_cartpole_in_graph_within_a_step_budget(runs):
    """Both agents (seeds 0 and 1) reach reward_100 >= 200 from episodes completed inside the graph within 50k env
    steps each (a random policy scores ~22; on this machine they needed ~30k)."""
    trainer, result = runs["both"]
    assert result.solved and result.env_steps <= 2 * 50_000, result
    for agent in trainer.agents:
        assert agent.stats.reward_100 >= 200 and 0 < agent.milestone.solved_env_steps <= 50_000, agent.milestone
    summary = json.loads((runs["tmp"] / "runs" / "both" / "seed_1" / "summary.json").read_text())
    assert summary["backend"] == "graph" and summary["solved"]
    # --linear-lr moved inside the program: lr(t) = 1e-3 (1 - t / 50k) at the last update's env steps t
    steps = trainer.progress.env_steps
    assert trainer.learner.optimizer.learning_rate.numpy() == pytest.approx(1e-3 * (1 - steps / 50_000), rel=1e-5)


def test_each_of_k_ppo_agents_trains_as_its_own_run(runs):
    """After 3 iterations (60 clipped-surrogate steps each) agent k of --num-seeds 2 --seed 0 has the weights of
    --seed k alone within float32 round-off (one batched matmul over agents), and the same episodes; the two
    agents differ from each other."""
    recorded = runs["both"][0].recorded
    for k, alone in enumerate(runs["alone"]):
        assert alone.progress.env_steps == EARLY_STEPS
        agent_weights, recent, episodes = recorded[k]
        for a, b in zip(agent_weights, weights(alone), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        assert recent == pytest.approx(list(alone.agents[0].stats.recent))
        assert episodes == alone.agents[0].stats.episodes
    assert not np.allclose(recorded[0][0][0], recorded[1][0][0])


def test_the_exported_ppo_policy_acts_as_the_trained_one(runs):
    """Each agent's SavedModel, loaded with tf.saved_model.load only, gives the trained policy's greedy actions."""
    tmp, (trainer, _) = runs["tmp"], runs["both"]
    obs = np.random.default_rng(0).normal(size=(256, 4)).astype(np.float32)
    for k, seed in enumerate((0, 1)):
        loaded = tf.saved_model.load(str(tmp / "models" / "both" / f"seed_{seed}"))
        trainer.learner.policy.load_agent(k)
        np.testing.assert_array_equal(loaded.signatures["serving_default"](observations=obs)["action"].numpy(),
                                      trainer.template.greedy_numpy(obs))
        metadata = json.loads(loaded.metadata_json.numpy())
        assert metadata["config"]["algo"] == "ppo" and metadata["config"]["backend"] == "graph"


def test_losses_reduced_per_agent_are_each_agents_loss():
    """The losses with axis=-1 on [K, B] equal the scalar losses on each agent's [B] slice."""
    rng = np.random.default_rng(1)
    log_probs, old, advantages, values, returns, old_values, entropies = (
        tf.constant(rng.normal(size=(3, 50)).astype(np.float32)) for _ in range(7))
    loss, info = clipped_surrogate_loss(log_probs, old, advantages, 0.2, axis=-1)
    value = value_estimation_loss(values, returns, old_values, 0.3, axis=-1)
    entropy = entropy_loss(entropies, axis=-1)
    for k in range(3):
        loss_k, info_k = clipped_surrogate_loss(log_probs[k], old[k], advantages[k], 0.2)
        np.testing.assert_allclose([loss[k], info["clip_fraction"][k], info["approx_kl"][k], value[k], entropy[k]],
                                   [loss_k, info_k["clip_fraction"], info_k["approx_kl"],
                                    value_estimation_loss(values[k], returns[k], old_values[k], 0.3),
                                    entropy_loss(entropies[k])], rtol=1e-6)


def test_unimplemented_ppo_options_are_refused_in_one_line(tmp_path, capsys):
    from tfpg.cli.train import main

    status = main(["--algo", "ppo", "--backend", "graph", "--normalize-obs", "true", "--target-kl", "0.01",
                   "--rollout-steps", "128", "--logdir", str(tmp_path / "runs"), "--export-dir", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert ("--backend graph does not implement --normalize-obs, --target-kl, --rollout-steps for --algo ppo; use "
            "--normalize-obs false, --target-kl 0, --horizon for PPO's rollout length, or --backend gym") in err
    assert not os.listdir(tmp_path)


def test_an_update_walks_each_agents_batch_in_minibatches_with_a_smaller_last_one():
    """GraphPPO.learn run eagerly on a made-up rollout of 5 steps x 2 envs (10 rows), minibatches of 4: three Adam
    steps per epoch (4, 4, 2 rows); agent 1 of seeds (3, 4) ends with the weights of seed 4 alone on its slice
    (its own shuffles), also with the clipped value loss and an entropy bonus."""
    from tfpg.envs.make import env_spaces
    from tfpg.models.policies import make_policy

    config = build_config("ppo", "CartPole-v1", None, dict(backend="graph", hidden=(8,), critic_hidden=(8,), horizon=5,
                                                           num_envs=2, minibatch_size=4, epochs=2, clip_range_vf=0.2,
                                                           entropy_beta=0.01))
    spaces = env_spaces("CartPole-v1")
    rng = np.random.default_rng(0)
    shape = (5, 2, 2)
    rollout = dict(obs=rng.normal(size=(*shape, 4)), actions=rng.integers(0, 2, shape), rewards=np.ones(shape),
                   terminated=rng.random(shape) < 0.2, truncated=rng.random(shape) < 0.1,
                   final_obs=rng.normal(size=(*shape, 4)), last_obs=rng.normal(size=(2, 2, 4)))
    rollout = {k: tf.constant(v, tf.int32 if k == "actions" else None if v.dtype == bool else tf.float32)
               for k, v in rollout.items()}

    def learner(seeds, agents):
        template = make_policy("categorical", spaces.observation_space, spaces.action_space, (8,), seeds[0])
        graph_ppo = REGISTRY["ppo"].graph_learner(config, spaces, template, seeds)
        part = {k: tf.gather(v, agents, axis=0 if k == "last_obs" else 1) for k, v in rollout.items()}
        metrics, finite = graph_ppo.learn(SimpleNamespace(**part))
        assert bool(finite) and list(metrics["gradient_steps"].numpy()) == [6.0] * len(seeds)
        assert int(graph_ppo.optimizer.iterations.numpy()) == 6
        return [v.numpy() for v in graph_ppo.policy.variables + graph_ppo.critic.variables]

    both, alone = learner([3, 4], [0, 1]), learner([4], [1])
    for a, b in zip(both, alone, strict=True):
        np.testing.assert_allclose(a[1], b[0], rtol=1e-5, atol=1e-6)
