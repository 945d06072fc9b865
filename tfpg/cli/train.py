"""Command line: flags -> validated config -> trainer -> where the results went.

The parser is generated from the registered algorithms' config dataclasses (`tfpg.config.options`).
"""
from __future__ import annotations

import argparse
import glob
import os
import sys

from tfpg.config.run import DEFAULT_ALGO, DEFAULT_ENV
from tfpg.core.errors import ConfigError, SaveError

# Options that are not config fields, or that the CLI adds by hand.
NON_CONFIG = ("list_presets", "algo", "preset", "resume")


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        # One line, exit 2, like every other usage error of tfpg.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def make_parser() -> argparse.ArgumentParser:
    from tfpg import algos
    from tfpg.algos.registry import default_preset
    from tfpg.config.options import add_arguments

    default = default_preset(DEFAULT_ALGO, DEFAULT_ENV)
    p = _ArgumentParser(
        prog="train.py",
        description="Train a tfpg agent. Values come from the config defaults shown here, then the preset "
                    "(--preset, or the default preset of --algo on --env, if it has one), then these flags. "
                    f"`train.py` with no flags runs the preset {default.name}; --list-presets shows every preset.")
    p.add_argument("--list-presets", action="store_true", help="print every preset and exit")
    p.add_argument("--algo", choices=sorted(algos.REGISTRY), default=None, help=f"algorithm (default: {DEFAULT_ALGO})")
    p.add_argument("--preset", default=None, help="named preset; see --list-presets (default: the env's preset)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR (runs/<run-name>) from its latest checkpoint with its saved "
                        "configuration; only --total-steps, --no-progress, --ray-address and --ray-num-cpus may be given "
                        "with it")
    add_arguments(p, algos.config_classes(), skip=("algo",))
    return p


def list_presets() -> str:
    from tfpg.algos import presets

    table = presets()
    width = max(map(len, table))
    lines = []
    for name, preset in table.items():
        default = " (default)" if preset.default else ""
        lines.append(f"{name:<{width}}  --algo {preset.algo:<9} {preset.env_id:<26} {preset.description}{default}\n"
                     f"{'':<{width}}  source: {preset.source}")
    return "\n".join(lines)


def _options(args: argparse.Namespace) -> tuple[str | None, dict]:
    """(--env, the other options given as flags by field name); argparse leaves the others None."""
    options = {k: v for k, v in vars(args).items() if k not in NON_CONFIG and v is not None}
    return options.pop("env_id", None), options


def configure(args: argparse.Namespace):
    """(config, run_dir, export_path, resume_from) from parsed flags; ConfigError on bad input.
    `resume_from`: with --resume, the validated checkpoint to continue from (a RestoreResult), else None."""
    from tfpg.api import configure as configure_run
    from tfpg.training.checks import check_resume

    env_id, options = _options(args)
    if args.resume:
        return check_resume(args.resume, args.algo, env_id, args.preset, options)
    return (*configure_run(args.algo, env_id, args.preset, options), None)


def open_agent(args: argparse.Namespace):
    """The agent the flags describe (tfpg.api: the same checks, files and training as from Python)."""
    from tfpg import api

    env_id, options = _options(args)
    if args.resume:
        return api.load(args.resume, env_id, algo=args.algo, preset=args.preset, **options)
    return api.make_agent(args.algo, env_id, args.preset, **options)


def report(result) -> int:
    """Say where the results went; the exit status (128 + signal when interrupted)."""
    if result.interrupted_by is not None:
        import signal

        name = signal.Signals(result.interrupted_by).name
        print(f"interrupted by {name} at {result.env_steps:,} env steps; checkpoint and export written. "
              f"Resume with: python train.py --resume {result.run_dir}", file=sys.stderr)
        return 128 + result.interrupted_by
    status = "solved" if result.solved else "stopped"
    print(f"{status} after {result.env_steps:,} env steps, {result.episodes:,} episodes, "
          f"{result.train_seconds:.1f} s of training ({result.steps_per_s:,.0f} steps/s); "
          f"reward_100 = {result.reward_100:.1f}")
    print(f"TensorBoard events: {result.run_dir}")
    if result.export_path:
        print(f"SavedModel:         {result.export_path}")
        # --num-seeds K > 1 exports one SavedModel per agent, in seed_<s> folders below the export path
        agents = [] if os.path.exists(os.path.join(result.export_path, "saved_model.pb")) else \
            sorted(glob.glob(os.path.join(result.export_path, "seed_*")), key=lambda p: int(p.rsplit("_", 1)[1]))
        one = agents[0] if agents else result.export_path
        print(f"evaluate it:        python -m tfpg.evaluate {one}" + (f"  (and the other {len(agents) - 1} seed_<s>)"
                                                                        if len(agents) > 1 else ""))
    print(f"inspect the run:    tensorboard --logdir {os.path.dirname(result.run_dir)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from tfpg.core.quiet import import_tensorflow

    import_tensorflow()
    args = make_parser().parse_args(argv)
    if args.list_presets:
        print(list_presets())
        return 0
    from tfpg.core.errors import TrainingError

    try:
        result = open_agent(args).run()
    except ConfigError as e:   # bad input, or a checkpoint that passed its checksums but does not fit the run
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    except (TrainingError, SaveError) as e:   # SaveError: a checkpoint or export write failed (disk full, ...)
        print(f"train.py: error: {e}", file=sys.stderr)
        return 1
    return report(result)
