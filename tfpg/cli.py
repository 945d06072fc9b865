"""Command line: flags -> validated config -> algorithm.train -> where the results went."""
from __future__ import annotations

import argparse
import os
import sys

from tfpg.config import (ACTIVATIONS, BASELINE_KINDS, CONFIG_CLASSES, DEFAULT_ALGO, DEFAULT_ENV, DEFAULT_PRESETS,
                         EPS_SCHEDULES, LOSS_KINDS, POLICY_KINDS, PRESETS, RETURN_KINDS, STOP_ON, UPDATE_RULES,
                         VECTOR_MODES, build_config)
from tfpg import algos
from tfpg.errors import ConfigError


def _hidden(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer widths like 128 or 64,64, got {text!r}") from None


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _defaults(algo: str = DEFAULT_ALGO) -> dict:
    """Values of `algo`'s default configuration on the default env, shown in --help."""
    preset = PRESETS[DEFAULT_PRESETS[(algo, DEFAULT_ENV)]]
    cfg = CONFIG_CLASSES[algo](**preset.overrides)
    return cfg.to_dict()


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        # One line, exit 2, like every other usage error of tfpg.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def make_parser() -> argparse.ArgumentParser:
    d = _defaults()
    p = _ArgumentParser(
        prog="train.py",
        description="Train a tfpg agent. Values come from the dataclass defaults, then the preset "
                    "(--preset, or the default preset for --algo/--env), then these flags. "
                    f"Defaults shown are those of `train.py` with no flags (preset "
                    f"{DEFAULT_PRESETS[(DEFAULT_ALGO, DEFAULT_ENV)]}).")
    p.add_argument("--list-presets", action="store_true", help="print every preset and exit")
    p.add_argument("--algo", choices=sorted(CONFIG_CLASSES), default=None, help=f"algorithm (default: {DEFAULT_ALGO})")
    p.add_argument("--env", dest="env_id", default=None, help=f"gymnasium env id (default: {DEFAULT_ENV})")
    p.add_argument("--preset", default=None, help="named preset; see --list-presets (default: the env's tuned preset)")
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, help=f"random seed for TF, numpy and the envs (default: {d['seed']})")
    g.add_argument("--total-steps", type=int, help=f"env-step budget (default: {d['total_steps']})")
    g.add_argument("--stop-reward", type=float,
                   help=f"stop once reward_100 (mean of the last 100 episodes) reaches this (default: {d['stop_reward']})")
    g.add_argument("--stop-on", choices=STOP_ON,
                   help="train: stop on reward_100 of the training episodes; eval: on the greedy evaluation "
                        f"mean (needs --eval-every) (default: {d['stop_on']})")
    g.add_argument("--eval-every", type=int,
                   help=f"greedy evaluation every this many env steps, logged as eval/reward; 0 = never (default: {d['eval_every']})")
    g.add_argument("--eval-episodes", type=int, help=f"episodes per greedy evaluation (default: {d['eval_episodes']})")
    g.add_argument("--num-envs", type=int, help=f"environments stepped together (default: {d['num_envs']})")
    g.add_argument("--vector-mode", choices=VECTOR_MODES,
                   help="auto: gymnasium's batched env where one exists, else in-process sync (default: auto)")
    g.add_argument("--logdir", help=f"TensorBoard runs go to LOGDIR/<run-name> (default: {d['logdir']})")
    g.add_argument("--export-dir", help=f"SavedModels go to EXPORT_DIR/<run-name> (default: {d['export_dir']})")
    g.add_argument("--no-export", dest="export", action="store_const", const=False,
                   help="do not export a SavedModel at the end")
    g.add_argument("--overwrite", action="store_const", const=True, help="allow replacing an existing export")
    g.add_argument("--run-name", help="folder name of the run (default: <algo>-<env>-s<seed>-<time>)")
    g.add_argument("--no-progress", dest="progress", action="store_const", const=False,
                   help="no progress bar")
    g.add_argument("--checkpoint-every", type=int,
                   help="write a checkpoint every N env steps (running episodes end there and the envs are "
                        f"re-seeded, so a resumed run continues exactly); 0 = only on Ctrl-C/SIGTERM (default: {d['checkpoint_every']})")
    g.add_argument("--max-nonfinite", type=int,
                   help=f"non-finite updates are skipped; stop after this many in a row (default: {d['max_nonfinite']})")
    g.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR (runs/<run-name>) from its latest checkpoint with its saved "
                        "configuration; only --total-steps and --no-progress may be given with it")
    g.add_argument("--export-best", type=_bool, metavar="{true,false}",
                   help="export the policy of the best greedy evaluation instead of the last one (needs --eval-every) "
                        f"(default: {d['export_best']})")
    g.add_argument("--terminal-on-life-loss", type=_bool, metavar="{true,false}",
                   help="Atari: end an episode at each life lost (gymnasium's AtariPreprocessing restarts the game "
                        "then, so reward_100 counts single lives) (default: False)")
    g = p.add_argument_group("policy gradient")
    g.add_argument("--policy", choices=POLICY_KINDS,
                   help="auto: categorical for Discrete actions, diagonal gaussian for Box actions (default: auto)")
    g.add_argument("--hidden", type=_hidden, help=f"hidden layer widths, comma separated (default: {','.join(map(str, d['hidden']))})")
    g.add_argument("--log-std-init", type=float,
                   help=f"initial log-std of the Gaussian policy, a trainable vector (default: {d['log_std_init']})")
    g.add_argument("--log-std-lr", type=float,
                   help="Adam learning rate of the Gaussian log-std, a separate optimizer; 0 = the policy's optimizer "
                        f"and --lr (default: {d['log_std_lr']})")
    g.add_argument("--std-ceiling", type=float,
                   help="Gaussian policy: cap sigma by a ceiling that falls log-linearly from exp(--log-std-init) to "
                        "this value over --std-ceiling-steps env steps (the log-std stays trainable below it); "
                        f"0 = no ceiling (default: {d['std_ceiling']})")
    g.add_argument("--std-ceiling-steps", type=int,
                   help=f"env steps over which the --std-ceiling falls (default: {d['std_ceiling_steps']})")
    g.add_argument("--activation", choices=ACTIVATIONS, help=f"hidden-layer activation of the policy (default: {d['activation']})")
    g.add_argument("--normalize-obs", type=_bool, metavar="{true,false}",
                   help="running mean/var observation normalisation inside the policy (exported with it) "
                        f"(default: {d['normalize_obs']})")
    g.add_argument("--lr", type=float, help=f"Adam learning rate (default: {d['lr']})")
    g.add_argument("--adam-eps", type=float, help=f"Adam epsilon (default: {d['adam_eps']})")
    g.add_argument("--gamma", type=float, help=f"discount factor (default: {d['gamma']})")
    g.add_argument("--episodes-per-update", type=int,
                   help=f"complete episodes in each update batch (default: {d['episodes_per_update']})")
    g.add_argument("--returns", choices=RETURN_KINDS,
                   help="reward_to_go: G_t from step t on; total: G_0 for every step (CS285); nstep: "
                        "sum of the next --n-steps discounted rewards, no complete episodes needed; lambda: TD(lambda) "
                        f"returns from the learned baseline, i.e. GAE advantages (default: {d['returns']})")
    g.add_argument("--n-steps", type=int, help=f"window of --returns nstep (default: {d['n_steps']})")
    g.add_argument("--gae-lambda", type=float,
                   help=f"lambda of --returns lambda: TD(lambda) returns, GAE(lambda) advantages (default: {d['gae_lambda']})")
    g.add_argument("--update", choices=UPDATE_RULES,
                   help="batch: one step on the mean over all steps (1/sum T_i); episode: one step per episode (1/T); "
                        "step: one step per transition; minibatch: one step per shuffled minibatch of "
                        f"--minibatch-size steps (default: {d['update']})")
    g.add_argument("--minibatch-size", type=int, help=f"steps per minibatch of --update minibatch (default: {d['minibatch_size']})")
    g.add_argument("--steps-per-update", type=int,
                   help="collect at least this many steps of complete episodes per update; with --returns nstep, "
                        f"the transitions per batch (default: {d['steps_per_update']})")
    g.add_argument("--baseline", choices=BASELINE_KINDS,
                   help="b(s) subtracted from returns: none, mean (of all returns seen), moving (mean of the last "
                        "--baseline-window), linear (scikit-learn LinearRegression on states), critic (Keras value "
                        f"network) (default: {d['baseline']})")
    g.add_argument("--baseline-window", type=int, help=f"transitions in the moving baseline (default: {d['baseline_window']})")
    g.add_argument("--critic-hidden", type=_hidden, help=f"critic layer widths (default: {','.join(map(str, d['critic_hidden']))})")
    g.add_argument("--critic-lr", type=float, help=f"critic Adam learning rate (default: {d['critic_lr']})")
    g.add_argument("--critic-epochs", type=int, help=f"critic gradient steps per batch (default: {d['critic_epochs']})")
    g.add_argument("--normalize", type=_bool, metavar="{true,false}",
                   help=f"standardise advantages per batch (default: {d['normalize']})")
    g.add_argument("--entropy-beta", type=float, help=f"entropy bonus scale (default: {d['entropy_beta']})")
    g.add_argument("--grad-clip", type=float, help=f"global L2 gradient-norm clip, 0 = off (default: {d['grad_clip']})")
    g.add_argument("--reuse-epochs", type=int,
                   help="gradient steps per batch; > 1 weights each term by pi/pi_old (importance sampling) "
                        f"(default: {d['reuse_epochs']})")
    g.add_argument("--is-clip", type=float, help=f"truncate importance ratios at this value, 0 = off (default: {d['is_clip']})")
    g.add_argument("--target-kl", type=float,
                   help="stop reusing a batch once the sampled KL(pi_old || pi) on it exceeds this, 0 = off "
                        f"(default: {d['target_kl']})")
    g.add_argument("--kl-adaptive-lr", type=_bool, metavar="{true,false}",
                   help="after each batch: Adam lr / 1.5 if the batch's KL(pi_old || pi) > 2 x --target-kl, x 1.5 "
                        f"(at most --lr) if < --target-kl / 2 (default: {d['kl_adaptive_lr']})")
    g.add_argument("--grad-var-every", type=int,
                   help=f"log grad_var, the variance of per-episode gradient estimates, every N updates; 0 = off "
                        f"(default: {d['grad_var_every']})")
    q = _defaults("dqn")
    g = p.add_argument_group(
        "dqn", f"--algo dqn. Defaults shown are those of its CartPole preset {DEFAULT_PRESETS[('dqn', DEFAULT_ENV)]} "
               f"(which also sets --num-envs {q['num_envs']}, --hidden {','.join(map(str, q['hidden']))}, --lr {q['lr']}, "
               f"--grad-clip {q['grad_clip']}, --stop-on {q['stop_on']}, --eval-every {q['eval_every']}); "
               "--hidden, --lr, --adam-eps, --gamma and --grad-clip apply to DQN too.")
    g.add_argument("--buffer-size", type=int, help=f"replay capacity in transitions, FIFO (default: {q['buffer_size']})")
    g.add_argument("--learning-starts", type=int,
                   help=f"env steps of uniformly random actions before the first update (default: {q['learning_starts']})")
    g.add_argument("--batch-size", type=int, help=f"transitions per gradient step (default: {q['batch_size']})")
    g.add_argument("--train-freq", type=int, help=f"vector env steps between updates (default: {q['train_freq']})")
    g.add_argument("--gradient-steps", type=int, help=f"gradient steps per update (default: {q['gradient_steps']})")
    g.add_argument("--target-sync", type=int,
                   help=f"gradient steps between target-network updates (default: {q['target_sync']})")
    g.add_argument("--tau", type=float,
                   help=f"target <- tau*online + (1-tau)*target at each sync; 1 = overwrite (default: {q['tau']})")
    g.add_argument("--loss", choices=LOSS_KINDS, help=f"TD loss: mse or huber (default: {q['loss']})")
    g.add_argument("--double", type=_bool, metavar="{true,false}",
                   help=f"Double DQN target: the online net picks a', the target net values it (default: {q['double']})")
    g.add_argument("--eps-start", type=float, help=f"initial exploration rate (default: {q['eps_start']})")
    g.add_argument("--eps-end", type=float, help=f"final exploration rate (default: {q['eps_end']})")
    g.add_argument("--eps-decay-steps", type=int,
                   help=f"env steps from --eps-start to --eps-end (default: {q['eps_decay_steps']})")
    g.add_argument("--eps-schedule", choices=EPS_SCHEDULES,
                   help=f"linear or exponential (geometric) decay (default: {q['eps_schedule']})")
    g.add_argument("--log-every", type=int, help=f"env steps between logged diagnostics (default: {q['log_every']})")
    g.add_argument("--checkpoint-replay", type=_bool, metavar="{true,false}",
                   help="store the replay buffer in checkpoints: exact resume, at the cost of the buffer's size on disk "
                        "per checkpoint (the Atari presets turn it off); without it a resumed run refills "
                        f"--learning-starts random steps (default: {q['checkpoint_replay']})")
    p.set_defaults(**{k: None for k in ("export", "overwrite", "progress")})
    return p


NON_CONFIG = {"list_presets", "algo", "env_id", "preset", "resume"}
RESUME_FLAGS = {"total_steps", "progress"}


def list_presets() -> str:
    width = max(map(len, PRESETS))
    lines = []
    for name, preset in PRESETS.items():
        env = preset.overrides.get("env_id", "?")
        lines.append(f"{name:<{width}}  --algo {preset.algo:<9} {env:<26} {preset.description}\n"
                     f"{'':<{width}}  source: {preset.source}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    if args.list_presets:
        print(list_presets())
        return 0
    overrides = {k: v for k, v in vars(args).items() if k not in NON_CONFIG}
    try:
        if args.resume:
            config, run_dir, export_path = algos.check_resume(args.resume, args.algo, args.env_id, args.preset, overrides)
        else:
            config = build_config(args.algo, args.env_id, args.preset, overrides)
            run_dir, export_path = algos.check_run(config)
    except ConfigError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    from tfpg.run import TrainingError

    try:
        result = algos.run_algorithm(config, run_dir, export_path, resume=bool(args.resume))
    except TrainingError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 1
    if result.interrupted_by is not None:
        import signal

        name = signal.Signals(result.interrupted_by).name
        print(f"interrupted by {name} at {result.env_steps:,} env steps; checkpoint and export written. "
              f"Resume with: python train.py --resume {result.run_dir}", file=sys.stderr)
        return 128 + result.interrupted_by
    status = "solved" if result.solved else "stopped"
    print(f"{status} after {result.env_steps:,} env steps, {result.episodes:,} episodes, "
          f"{result.train_seconds:.1f} s of training ({result.steps_per_s:,.0f} steps/s); reward_100 = {result.reward_100:.1f}")
    print(f"TensorBoard events: {result.run_dir}")
    if result.export_path:
        print(f"SavedModel:         {result.export_path}")
        print(f"evaluate it:        python -m tfpg.evaluate {result.export_path}")
    print(f"inspect the run:    tensorboard --logdir {os.path.dirname(result.run_dir)}")
    return 0
