"""LiteRT and ONNX conversions of every policy kind: same greedy actions as the SavedModel, parameters
within 1e-4 (absolute + relative), no sampling op, and the files run in a process importing neither
TensorFlow, tfpg nor tfp. Refusals are one line with exit status 2.

The conversion tests need the optional extras (`pip install -e ".[litert,onnx]"`) and skip without them.
"""
import json
import os
import sys

import numpy as np
import pytest
from conftest import ROOT, cli_here, run_tensorflow_only
from policy_kinds import KINDS, export_all

from tfpg.core.errors import ConfigError
from tfpg.export.formats import ATOL, RTOL, convert, load_actor, require, sample_action, saved_model_runner

RUNTIME_ONLY = r"""
import json, sys
import numpy as np
import onnxruntime
from ai_edge_litert.interpreter import Interpreter

jobs = json.load(open(sys.argv[1]))
out = {}
for name, job in jobs.items():
    obs = np.load(job["obs"])
    interpreter = Interpreter(model_path=job["tflite"])
    litert = interpreter.get_signature_runner()(observations=obs)
    session = onnxruntime.InferenceSession(job["onnx"], providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    onnx_out = dict(zip(names, session.run(names, {"observations": obs})))
    out[name] = {
        "litert": {k: v.tolist() for k, v in litert.items()},
        "onnx": {k: v.tolist() for k, v in onnx_out.items()},
        "litert_ops": sorted({op["op_name"] for op in interpreter._get_ops_details()}),
        "onnx_ops": sorted({node.op_type for node in __import__("onnx").load(job["onnx"]).graph.node}),
    }
out["imported"] = sorted({m.split(".")[0] for m in sys.modules} & {"tensorflow", "tfpg", "tensorflow_probability"})
print(json.dumps(out))
"""

OUTPUTS = {"categorical": ["action", "logits"], "gaussian_obs_norm": ["action", "log_std", "mean"],
           "dqn": ["action", "q_values"], "cnn": ["action", "logits"]}
SAMPLING_OPS = ("RANDOM", "MULTINOMIAL")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """{kind: (SavedModel outputs, runtime-only outputs)} for every policy kind, both formats."""
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    tmp = tmp_path_factory.mktemp("formats")
    jobs, reference = {}, {}
    for kind, (_, obs, job) in export_all(tmp).items():
        jobs[kind] = {**job, "tflite": convert(job["dir"], "litert"), "onnx": convert(job["dir"], "onnx")}
        reference[kind] = saved_model_runner(job["dir"])(obs)
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    out = run_tensorflow_only(RUNTIME_ONLY, tmp / "jobs.json", cwd=tmp)
    assert out["imported"] == []   # neither TensorFlow, tfpg nor tfp
    return {kind: (reference[kind], out[kind], jobs[kind]) for kind in KINDS}


@pytest.mark.parametrize("fmt", ["litert", "onnx"])
@pytest.mark.parametrize("kind", KINDS)
def test_converted_model_matches_the_saved_model(converted, kind, fmt):
    reference, got, _ = converted[kind]
    outputs = got[fmt]
    assert sorted(outputs) == OUTPUTS[kind] == sorted(reference)
    for key, value in reference.items():
        if np.issubdtype(value.dtype, np.integer):
            assert outputs[key] == value.tolist()
            assert len(set(value.tolist())) > 1   # the comparison is not vacuous
        else:
            np.testing.assert_allclose(outputs[key], value, atol=ATOL, rtol=RTOL)
    ops = got[f"{fmt}_ops"]
    assert not [op for op in ops if any(s in op.upper() for s in SAMPLING_OPS)], ops


def test_metadata_beside_each_file(converted):
    _, _, job = converted["gaussian_obs_norm"]
    for fmt, key in (("litert", "tflite"), ("onnx", "onnx")):
        with open(job[key] + ".json") as f:
            metadata = json.load(f)
        assert metadata["env_id"] == "LunarLanderContinuous-v3" and metadata["format_version"] == 1
        deployment = metadata["deployment"]
        assert deployment["format"] == fmt and deployment["file"] == os.path.basename(job[key])
        assert deployment["inputs"] == {"observations": {"dtype": "float32", "shape": [None, 8]}}
        assert sorted(deployment["outputs"]) == ["action", "log_std", "mean"]


@pytest.mark.parametrize("key", ["tflite", "onnx"])
def test_load_actor_acts_greedily_and_samples(converted, key):
    reference, _, job = converted["categorical"]
    obs = np.load(job["obs"])
    act, _ = load_actor(job[key])
    assert act(obs).tolist() == reference["action"].tolist()
    sample, _ = load_actor(job[key], stochastic=True, seed=3)
    assert set(sample(obs).tolist()) <= {0, 1, 2}
    with pytest.raises(ConfigError, match="no sampling policy"):
        load_actor(converted["dqn"][2][key], stochastic=True)


def test_sample_action_draws_from_the_parameters():
    rng = np.random.default_rng(0)
    logits = np.log(np.array([[0.2, 0.5, 0.3]] * 20000))
    counts = np.bincount(sample_action({"logits": logits}, {}, rng), minlength=3) / 20000
    np.testing.assert_allclose(counts, [0.2, 0.5, 0.3], atol=0.015)
    metadata = {"action_space": {"type": "Box", "low": [-1.0, -100.0], "high": [1.0, 100.0]}}
    mean, log_std = np.array([[0.0, 1.0]] * 20000), np.log(np.array([[0.5, 2.0]] * 20000))
    actions = sample_action({"mean": mean, "log_std": log_std}, metadata, rng)
    assert actions.dtype == np.float32 and actions[:, 0].min() == -1.0 and actions[:, 0].max() == 1.0
    assert abs(actions[:, 1].mean() - 1.0) < 0.05 and abs(actions[:, 1].std() - 2.0) < 0.05
    with pytest.raises(ConfigError, match="no sampling policy"):
        sample_action({"q_values": mean}, {"algorithm": "dqn"}, rng)


def test_evaluate_runs_converted_files(converted, tmp_path):
    """The shipped CartPole policy, converted, balances as the SavedModel does."""
    import shutil

    from tfpg.cli.evaluate import evaluate

    shutil.copytree(os.path.join(ROOT, "saved_models", "cartpole-reinforce"), tmp_path / "cartpole")
    for fmt in ("litert", "onnx"):
        path = convert(str(tmp_path / "cartpole"), fmt)
        assert evaluate(path, episodes=3, seed=100).min() >= 475
    assert len(evaluate(path, episodes=2, seed=0, stochastic=True)) == 2


def one_line_refusal(proc, *phrases):
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("tfpg-export: error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


def test_refuses_what_is_not_a_tfpg_export(tmp_path):
    (tmp_path / "empty").mkdir()
    one_line_refusal(cli_here([str(tmp_path / "empty"), "--format", "onnx"], cwd=tmp_path,
                             module="tfpg.export.formats"), "not a tfpg SavedModel")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "summary.json").write_text(json.dumps({"export_path": None}))
    one_line_refusal(cli_here([str(tmp_path / "run"), "--format", "litert"], cwd=tmp_path,
                             module="tfpg.export.formats"), "was not exported")


def test_refuses_a_missing_converter_naming_the_extra(tmp_path, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "tf2onnx.py").write_text("raise ImportError('blocked for the test')\n")
    (blocker / "ai_edge_litert.py").write_text("raise ImportError('blocked for the test')\n")
    model = os.path.join(ROOT, "saved_models", "cartpole-reinforce")
    monkeypatch.setenv("PYTHONPATH", f"{blocker}{os.pathsep}{ROOT}")
    for fmt, package in (("onnx", "tf2onnx"), ("litert", "ai-edge-litert")):
        proc = run_cli_with_env([model, "--format", fmt, "--output", str(tmp_path / f"x.{fmt}")], tmp_path)
        one_line_refusal(proc, package, f'pip install -e ".[{fmt}]"')
    with pytest.raises(ConfigError, match=r"\[onnx\]"):
        monkeypatch.setitem(sys.modules, "tf2onnx", None)
        require("onnx")


def run_cli_with_env(args, cwd):
    """`python -m tfpg.export.formats args` with this process's PYTHONPATH (which the test sets)."""
    import subprocess

    return subprocess.run([sys.executable, "-m", "tfpg.export.formats", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, check=False)


def test_refuses_to_overwrite_without_the_flag_and_writes_atomically(converted, tmp_path):
    _, _, job = converted["dqn"]
    saved_model = job["dir"]
    before = os.path.getmtime(job["onnx"])
    one_line_refusal(cli_here([saved_model, "--format", "onnx"], cwd=tmp_path, module="tfpg.export.formats"),
                     "already exists", "--overwrite")
    assert os.path.getmtime(job["onnx"]) == before
    proc = cli_here([saved_model, "--format", "onnx", "--overwrite"], cwd=tmp_path, module="tfpg.export.formats")
    assert proc.returncode == 0, proc.stderr[-2000:]
    leftovers = [n for n in os.listdir(os.path.dirname(job["onnx"])) if ".tmp-" in n]
    assert leftovers == []


@pytest.mark.parametrize("name", ["cartpole-reinforce", "lunarlander-pg"])
def test_shipped_conversions_agree_with_the_shipped_saved_models(name):
    """saved_models/<name>.tflite and .onnx were converted from saved_models/<name>: re-convert them
    (tfpg-export ... --overwrite) whenever the SavedModel changes."""
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("onnxruntime")
    from tfpg.export.formats import disagreements, load_model, probe_observations

    saved_model = os.path.join(ROOT, "saved_models", name)
    reference, metadata = load_model(saved_model)
    obs = probe_observations(metadata["observation_space"], seed=1)
    for ext in (".tflite", ".onnx"):
        run, converted_metadata = load_model(saved_model + ext)
        assert {k: v for k, v in converted_metadata.items() if k != "deployment"} == metadata
        assert disagreements(reference(obs), run(obs)) == []


def test_docs_tflite_example_runs_without_tensorflow():
    """The plain-Python example of the docs (Export and deployment), run as written from the repository root."""
    pytest.importorskip("ai_edge_litert")
    with open(os.path.join(ROOT, "docs", "guide", "export-and-deployment.md")) as f:
        page = f.read()
    block = page.split("<!-- example:tflite -->")[1].split("<!-- /example:tflite -->")[0]
    code = block.split("```python")[1].split("```")[0]
    code += "\nimport sys, json\nprint(json.dumps({'total': total, 'imported': sorted({m.split('.')[0] for m in " \
            "sys.modules} & {'tensorflow', 'tfpg', 'tensorflow_probability'})}))\n"
    out = run_tensorflow_only(code, cwd=ROOT)
    assert out["imported"] == [] and out["total"] > 100   # the shipped lander lands
