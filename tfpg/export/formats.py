"""Deployment formats: a tfpg SavedModel's deterministic path as LiteRT (.tflite) or ONNX (.onnx).

    tfpg-export RUN_OR_SAVED_MODEL --format litert|onnx [--output FILE] [--overwrite]
    python -m tfpg.export.formats RUN_OR_SAVED_MODEL --format litert|onnx

The converted model takes raw observations (`observations`: float32 (N, obs_dim), or uint8 frames
(N, C, H, W); the observation normalisation and the frame scaling are inside) and returns

    action            the greedy action: argmax of the logits (int32), the mean clipped to the action
                      bounds (Gaussian), or argmax of the Q-values (DQN)
    logits            categorical policies
    mean, log_std     Gaussian policies (mean unclipped)
    q_values          DQN

It is converted from the SavedModel's `serving_default` + `distribution`/`q_values` signatures, with
the TensorFlow Lite converter (built-in ops only) or tf2onnx; no sampling op is in it. Sampling stays
on the host: `sample_action(outputs, metadata, rng)` draws from the parameters with numpy. The
export's metadata, plus a "deployment" entry (format, inputs, outputs, converter versions), is written
beside the file as FILE.json. `load_actor(path)` runs a SavedModel folder, a .tflite or an .onnx file
as a batched numpy observations -> actions callable (used by `python -m tfpg.evaluate`).

Running a .tflite needs `ai-edge-litert` (extra `litert`), an .onnx `onnxruntime` (extra `onnx`);
neither needs TensorFlow or tfpg. Converting needs TensorFlow, and for ONNX `tf2onnx` and `onnx`.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import tempfile

import numpy as np

from tfpg.core.errors import ConfigError, one_line
from tfpg.core.files import POLICY_FIELDS, load_json_object, require_fields

FORMATS = {"litert": ".tflite", "onnx": ".onnx"}
# What each format needs at conversion time (the runtime checks the converted file against the SavedModel).
NEEDS = {"litert": ("ai_edge_litert",), "onnx": ("tf2onnx", "onnx", "onnxruntime")}
PIP_NAMES = {"ai_edge_litert": "ai-edge-litert", "tf2onnx": "tf2onnx", "onnx": "onnx", "onnxruntime": "onnxruntime"}
PARAM_SIGNATURES = ("serving_default", "distribution", "q_values")
ONNX_OPSET = 17
# Converted parameters agree with the SavedModel's within this (float32 round-off, fused kernels).
ATOL = RTOL = 1e-4
RECONVERT = "convert the model again with tfpg-export"


# ---------------------------------------------------------------- resolving inputs

def resolve_saved_model(path: str) -> str:
    """The SavedModel folder of `path`: a tfpg export itself, or a run folder whose summary.json names one."""
    from tfpg.export.saved_model import read_metadata

    summary = os.path.join(path, "summary.json")
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "saved_model.pb")) and os.path.isfile(summary):
        export_path = load_json_object(summary, "pass the run's SavedModel folder instead").get("export_path")
        if not export_path:
            raise ConfigError(f"the run at {path} was not exported (trained with --no-export); "
                              "train with export on, or pass a SavedModel folder")
        path = export_path
    read_metadata(path)   # ConfigError unless it is a tfpg export
    return path


def default_output(saved_model: str, fmt: str) -> str:
    """saved_models/<run> -> saved_models/<run>.tflite (or .onnx)."""
    return os.path.normpath(os.path.abspath(saved_model)) + FORMATS[fmt]


def require(fmt: str) -> None:
    """ConfigError naming the extra to install when a package `fmt` needs is missing."""
    for module in NEEDS[fmt]:
        try:
            importlib.import_module(module)
        except ImportError:
            raise ConfigError(f"the {fmt} format needs {PIP_NAMES[module]}, which is not installed; "
                              f"pip install -e \".[{fmt}]\" (or pip install \"tfpg[{fmt}]\")") from None


# ---------------------------------------------------------------- the deterministic graph

def deterministic_function(loaded):
    """tf.function observations -> {action, logits | mean, log_std | q_values}, composed of the loaded
    SavedModel's deterministic signatures (never `sample`)."""
    import tensorflow as tf

    signatures = loaded.signatures
    spec = signatures["serving_default"].structured_input_signature[1]["observations"]
    names = [n for n in PARAM_SIGNATURES if n in signatures]

    @tf.function(input_signature=[tf.TensorSpec(spec.shape, spec.dtype, name="observations")])
    def deterministic(observations):
        outputs = {}
        for name in names:
            outputs.update(signatures[name](observations=observations))
        return outputs

    return deterministic


def frozen(function):
    """The concrete function with every variable and captured constant folded in (what converters need)."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    return convert_variables_to_constants_v2(function.get_concrete_function())


def convert_litert(function, loaded) -> bytes:
    """A .tflite flatbuffer of `function` (reading `loaded`'s variables) with TFLite built-in ops only;
    one signature, serving_default."""
    import tensorflow as tf
    from tensorflow.lite.python.convert_phase import ConverterError

    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], loaded)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        return converter.convert()
    except ConverterError as e:   # a long multi-line report; its first line names the op
        raise ConfigError(f"the TFLite converter failed: {str(e).strip().splitlines()[0]}") from None


def convert_onnx(function) -> bytes:
    """A serialized ONNX model of `function` (opset ONNX_OPSET); input `observations`, outputs named as
    the function's dict keys. Refuses a graph with any op outside the standard ONNX domain."""
    import onnx
    import tf2onnx

    keys = sorted(function.get_concrete_function().structured_outputs)
    concrete = frozen(function)   # its outputs come in the order of the sorted keys, but unnamed
    renames = {t.name: key for t, key in zip(concrete.outputs, keys, strict=True)}
    renames[concrete.inputs[0].name] = "observations"
    model, _ = tf2onnx.convert.from_graph_def(concrete.graph.as_graph_def(), name="tfpg_policy",
                                              input_names=[concrete.inputs[0].name],
                                              output_names=[t.name for t in concrete.outputs], opset=ONNX_OPSET,
                                              tensors_to_rename=renames)
    # tf2onnx keeps going past ops it cannot convert and leaves them in the graph under their TF names.
    foreign = sorted({n.op_type for n in model.graph.node
                      if n.domain not in ("", "ai.onnx") or not onnx.defs.has(n.op_type)})
    if foreign:
        raise ConfigError(f"tf2onnx could not convert these ops to standard ONNX: {', '.join(foreign)}")
    onnx.checker.check_model(model)
    return model.SerializeToString()


# ---------------------------------------------------------------- running converted files (no TensorFlow)

def litert_runner(path: str):
    """observations -> {output: array} with the ai-edge-litert interpreter (inputs resized on a new batch size)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    runner = interpreter.get_signature_runner()
    return lambda observations: runner(observations=observations)


def onnx_runner(path: str):
    """observations -> {output: array} with an onnxruntime CPU session."""
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return lambda observations: dict(zip(names, session.run(names, {"observations": observations})))


def saved_model_runner(path: str):
    """observations -> {output: array} from the SavedModel's deterministic signatures (and `sample`)."""
    import tensorflow as tf

    from tfpg.export.saved_model import load_saved_model

    loaded = load_saved_model(path)   # a damaged SavedModel: one-line ConfigError naming the file
    concrete = deterministic_function(loaded).get_concrete_function()

    def run(observations):
        return {k: v.numpy() for k, v in concrete(tf.constant(observations)).items()}

    run.loaded = loaded
    return run


def read_deployment_metadata(path: str) -> dict:
    """The metadata written beside a converted file (FILE.json), or ConfigError."""
    meta_file = path + ".json"
    if not os.path.isfile(path):
        raise ConfigError(f"no file at {path}; pass a .tflite or .onnx file written by tfpg-export")
    if not os.path.isfile(meta_file):
        raise ConfigError(f"{path} has no tfpg metadata beside it ({meta_file} is missing); convert it with tfpg-export")
    metadata = load_json_object(meta_file, RECONVERT)
    if "deployment" not in metadata:
        raise ConfigError(f"{meta_file} is not tfpg-export metadata (no \"deployment\" entry); convert with tfpg-export")
    require_fields(metadata, meta_file, {**POLICY_FIELDS, "deployment": dict}, RECONVERT)
    require_fields(metadata["deployment"], meta_file, {"outputs": dict}, RECONVERT)
    return metadata


def load_model(path: str):
    """(run, metadata): `run(observations)` gives the deterministic outputs of a SavedModel folder, a
    .tflite or an .onnx file; the latter two need only their runtime (ai-edge-litert / onnxruntime)."""
    fmt = {ext: name for name, ext in FORMATS.items()}.get(os.path.splitext(path)[1])
    if fmt is None:
        from tfpg.export.saved_model import read_metadata

        metadata = read_metadata(path)   # ConfigError unless a tfpg SavedModel folder
        return saved_model_runner(path), metadata
    metadata = read_deployment_metadata(path)
    module = "ai_edge_litert" if fmt == "litert" else "onnxruntime"
    try:
        importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"running a {FORMATS[fmt]} file needs {PIP_NAMES[module]}, which is not installed; "
                          f"pip install -e \".[{fmt}]\"") from None
    try:
        return (litert_runner if fmt == "litert" else onnx_runner)(path), metadata
    except Exception as e:   # ValueError (LiteRT), InvalidProtobuf/Fail (onnxruntime): a damaged or foreign file
        raise ConfigError(f"{path} is damaged or not loadable by {PIP_NAMES[module]} ({one_line(e)}); "
                          f"{RECONVERT}") from None


# ---------------------------------------------------------------- acting on the host

def sample_action(outputs: dict, metadata: dict, rng: np.random.Generator) -> np.ndarray:
    """Draw actions from a converted model's distribution parameters, with numpy.

    Categorical: a ~ softmax(logits) by the Gumbel-max trick, argmax(logits + G), G = -log(-log U),
    U ~ Uniform(0, 1) (int32). Gaussian: a = mean + exp(log_std) * eps, eps ~ N(0, I), clipped to the
    action bounds in `metadata["action_space"]` as the env receives it (float32). DQN outputs have no
    distribution: ConfigError.
    """
    if "logits" in outputs:
        logits = np.asarray(outputs["logits"], np.float64)
        gumbel = -np.log(-np.log(rng.uniform(np.finfo(np.float64).tiny, 1.0, size=logits.shape)))
        return np.argmax(logits + gumbel, axis=-1).astype(np.int32)
    if "mean" in outputs:
        mean = np.asarray(outputs["mean"], np.float64)
        action = mean + np.exp(np.asarray(outputs["log_std"], np.float64)) * rng.standard_normal(mean.shape)
        space = metadata["action_space"]
        return np.clip(action, space["low"], space["high"]).astype(np.float32)
    raise no_sampling_policy(metadata, "this path")


def load_actor(path: str, stochastic: bool = False, seed: int = 0):
    """(act, metadata): `act(observations)` maps a numpy batch of raw observations to a numpy batch of
    actions, for a SavedModel folder, a .tflite or an .onnx file. Greedy by default; with `stochastic`
    a SavedModel uses its `sample` signature, a converted file `sample_action` with numpy seed `seed`."""
    if os.path.splitext(path)[1] not in FORMATS.values():
        return saved_model_actor(path, stochastic)
    run, metadata = load_model(path)
    obs_dtype = np.dtype(metadata["observation_space"].get("dtype", "float32"))
    if not stochastic:
        return (lambda observations: run(np.asarray(observations, obs_dtype))["action"]), metadata
    if not {"logits", "mean"} & set(metadata["deployment"]["outputs"]):
        raise no_sampling_policy(metadata, path)
    rng = np.random.default_rng(seed)
    return (lambda observations: sample_action(run(np.asarray(observations, obs_dtype)), metadata, rng)), metadata


def saved_model_actor(path: str, stochastic: bool = False):
    """(act, metadata) for a SavedModel folder: its serving_default (greedy) or sample signature."""
    import tensorflow as tf

    from tfpg.export.saved_model import load_saved_model, read_policy_metadata

    metadata = read_policy_metadata(path)
    loaded = load_saved_model(path)
    name = "sample" if stochastic else "serving_default"
    if name not in loaded.signatures:
        raise no_sampling_policy(metadata, path)
    signature = loaded.signatures[name]
    dtype = signature.structured_input_signature[1]["observations"].dtype

    def act(observations):
        return signature(observations=tf.constant(observations, dtype))["action"].numpy()

    act.loaded = loaded
    return act, metadata


def no_sampling_policy(metadata: dict, path: str) -> ConfigError:
    return ConfigError(f"the {metadata.get('algorithm', '?')} model at {path} has no sampling policy "
                       "(it acts greedily on Q-values); drop --stochastic")


# ---------------------------------------------------------------- converting, checking, writing

def probe_observations(observation_space: dict, n: int = 256, seed: int = 0) -> np.ndarray:
    """A batch of observations for checking a conversion: random frames (uint8), or N(0, 2^2) values
    clipped to the space's bounds."""
    rng = np.random.default_rng(seed)
    shape = tuple(observation_space["shape"])
    if observation_space.get("dtype") == "uint8":
        return rng.integers(0, 256, size=(min(n, 16), *shape), dtype=np.uint8)
    obs = rng.normal(scale=2.0, size=(n, *shape))
    return np.clip(obs, observation_space.get("low", -np.inf), observation_space.get("high", np.inf)).astype(np.float32)


def disagreements(reference: dict, converted: dict, atol: float = ATOL, rtol: float = RTOL) -> list[str]:
    """What differs between two output dicts: parameters beyond atol + rtol * |reference|, or greedy
    actions that differ where the reference's best two logits / Q-values are more than 2 * atol apart."""
    problems = [] if sorted(reference) == sorted(converted) else [f"outputs {sorted(converted)} != {sorted(reference)}"]
    for key in set(reference) & set(converted):
        ref, got = np.asarray(reference[key]), np.asarray(converted[key])
        if ref.shape != got.shape:
            problems.append(f"{key}: shape {got.shape} != {ref.shape}")
        elif np.issubdtype(ref.dtype, np.integer):
            scores = reference.get("logits", reference.get("q_values"))
            top2 = np.sort(np.asarray(scores), axis=-1)[:, -2:] if scores is not None else None
            clear = np.ones(len(ref), bool) if top2 is None else (top2[:, 1] - top2[:, 0]) > 2 * atol
            if (ref != got)[clear].any():
                problems.append(f"{key}: {int((ref != got)[clear].sum())} of {len(ref)} greedy actions differ")
        elif not np.allclose(got, ref, atol=atol, rtol=rtol):
            problems.append(f"{key}: max abs difference {np.abs(got - ref).max():.3g}")
    return problems


def deployment_entry(fmt: str, file: str, concrete, checked: int) -> dict:
    """The "deployment" metadata: format, tensor names/dtypes/shapes, converter versions, the check made."""
    import tensorflow as tf

    spec = concrete.structured_input_signature[0][0]
    versions = {"tensorflow": tf.__version__}
    if fmt == "onnx":
        import tf2onnx

        versions.update(tf2onnx=tf2onnx.__version__, onnx_opset=ONNX_OPSET)
    return {
        "format": fmt, "file": file, "converter": versions,
        "inputs": {"observations": {"dtype": spec.dtype.name, "shape": list(spec.shape.as_list())}},
        "outputs": {k: {"dtype": t.dtype.name, "shape": t.shape.as_list()}
                    for k, t in sorted(concrete.structured_outputs.items())},
        "sampling": "on the host: tfpg.export.formats.sample_action(outputs, metadata, rng)",
        "checked": {"observations": checked, "atol": ATOL, "rtol": RTOL},
    }


def write_atomically(path: str, data: bytes) -> str:
    """Write `data` to a temporary file beside `path`; returns its name (os.replace it into place)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.tmp-", dir=os.path.dirname(path))
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    return tmp


def convert(source: str, fmt: str, output: str | None = None, overwrite: bool = False) -> str:
    """Convert the tfpg export `source` (SavedModel or run folder) to `fmt`; returns the file written.

    The converted file is run on probe observations and must agree with the SavedModel (see
    `disagreements`) before it and FILE.json are moved into place; an existing output is replaced only
    with `overwrite`.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    saved_model = resolve_saved_model(source)
    output = os.path.abspath(output or default_output(saved_model, fmt))
    if not overwrite and (os.path.exists(output) or os.path.exists(output + ".json")):
        raise ConfigError(f"{output} already exists; pass --overwrite or choose another --output")
    if not os.path.isdir(os.path.dirname(output)):
        raise ConfigError(f"no folder {os.path.dirname(output)} for {output}; create it or choose another --output")
    require(fmt)
    from tfpg.export.saved_model import read_policy_metadata

    metadata = read_policy_metadata(saved_model)
    reference = saved_model_runner(saved_model)
    function = deterministic_function(reference.loaded)
    data = convert_litert(function, reference.loaded) if fmt == "litert" else convert_onnx(function)
    staged = []
    try:
        staged.append(write_atomically(output + FORMATS[fmt], data))   # the runtimes want the extension
        probe = probe_observations(metadata["observation_space"])
        runner = litert_runner if fmt == "litert" else onnx_runner
        problems = disagreements(reference(probe), runner(staged[0])(probe))
        if problems:
            raise ConfigError(f"the {fmt} model disagrees with the SavedModel: {'; '.join(problems)}")
        entry = deployment_entry(fmt, os.path.basename(output), function.get_concrete_function(), len(probe))
        staged.append(write_atomically(output, json.dumps({**metadata, "deployment": entry}, indent=2,
                                                          sort_keys=True).encode()))
        os.replace(staged[1], output + ".json")
        os.replace(staged[0], output)
    finally:
        for tmp in staged:
            if os.path.exists(tmp):
                os.remove(tmp)
    return output


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tfpg-export", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("source", metavar="RUN_OR_SAVED_MODEL", help="a SavedModel folder exported by train.py, or its run folder")
    p.add_argument("--format", required=True, choices=sorted(FORMATS), help="litert: .tflite; onnx: .onnx")
    p.add_argument("--output", "-o", default=None, help="file to write (default: the SavedModel's path + .tflite/.onnx)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    args = p.parse_args(argv)
    for noisy in ("tensorflow", "tf2onnx"):   # deprecation notices and per-op conversion logs
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        path = convert(args.source, args.format, args.output, args.overwrite)
    except ConfigError as e:
        print(f"tfpg-export: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({os.path.getsize(path):,} bytes) and {os.path.basename(path)}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
