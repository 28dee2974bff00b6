"""Convert a JAX function with jax2tf and save it as a SavedModel for TensorFlow Serving.

    saved_model_lib.convert_and_save_model(
        predict_fn, params, "/tmp/jax2tf/saved_models/mnist_flax/1",
        input_signatures=[tf.TensorSpec((None, 28, 28, 1), tf.float32)],
        polymorphic_shapes="(b, ...)")

Copy this file alone into your project, with tests/core/test_saved_model_lib.py: it
depends only on jax and tensorflow (and tensorflow-serving-api for warmup requests).
"""

import contextlib
import dataclasses
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import jax
import numpy as np
import tensorflow as tf
from jax.experimental import jax2tf
from tensorflow.core.protobuf import saved_model_pb2

# The serving signature's input name: its TensorSpec's name (models/inputs.py names it).
INPUT_NAME = "inputs"
# Where TensorFlow Serving looks for the requests that warm a version up.
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# Inputs and JAX outputs of a few examples, for checking the SavedModel later
# with any TensorFlow (tools/check_savedmodel.py, make compat); servers ignore it.
VALIDATION_FILE = os.path.join("assets.extra", "validation_batch.npz")


@dataclasses.dataclass(frozen=True)
class ServingFormat:
    """The newest export format that one TensorFlow Serving release reads.

    serving/releases.tsv lists the releases' formats.
    """

    calling_convention_version: int  # XlaCallModule's.
    stablehlo_version: str  # "1.9.1"


class ExportFormatError(ValueError):
    """JAX cannot write, or did not write, the requested ServingFormat."""


@dataclasses.dataclass(frozen=True)
class XlaCallModuleInfo:
    """What one XlaCallModule op of a SavedModel needs from the runtime."""

    calling_convention_version: int
    platforms: tuple[str, ...]
    stablehlo_version: str  # The module's producer, e.g. "1.9.1".


def convert_and_save_model(
    jax_fn: Callable[[Any, Any], Any],
    params: Any,
    model_dir: str,
    *,
    input_signatures: Sequence[tf.TensorSpec | dict[str, tf.TensorSpec]],
    polymorphic_shapes: str | None = None,
    with_gradient: bool = False,
    compile_model: bool = True,
    platforms: Sequence[str] = ("cpu",),
    serving_format: ServingFormat | None = None,
    save_model_options: tf.saved_model.SaveOptions | None = None,
    extra_signatures: Callable[[tf.types.experimental.GenericFunction], dict] | None = None,
) -> None:
    """Converts `jax_fn(params, inputs)` with jax2tf and saves a SavedModel.

    Args:
      jax_fn: a JAX function of (params, inputs); both may be pytrees.
      params: the parameters, saved as (non-trainable unless with_gradient)
        tf.Variables named after their path in the pytree, not as constants in
        the graph, whose protobuf is capped at 2 GB.
      model_dir: where to write the SavedModel.
      input_signatures: tf.TensorSpecs of `inputs`. The first becomes the
        `serving_default` signature; its name is the signature's input name.
        The others are traced too, so that callers of the reloaded object with
        those shapes need no retracing. For several named inputs, each is a
        dict of TensorSpecs named as its keys: `inputs` is then that dict, and
        the signature's inputs have those names.
      polymorphic_shapes: jax2tf polymorphic shape of `inputs`, e.g.
        "(b, ...)" for any batch size (of every named input, if a dict); the
        first signature then has None in that dimension. Needs exactly one
        input signature.
      with_gradient: save the gradient too (for fine-tuning the SavedModel).
      compile_model: jit_compile the tf.function; TensorFlow Serving needs it.
      platforms: where the SavedModel can run: "cpu", "cuda", "rocm", "tpu".
        One export can serve on several, e.g. ("cpu", "cuda").
      serving_format: the format of the oldest TensorFlow Serving release that
        must serve the model; None writes JAX's newest. Raises
        ExportFormatError if JAX cannot write it or the saved ops are newer.
      save_model_options: passed to tf.saved_model.save.
      extra_signatures: more signatures beside `serving_default`: called with the
        converted tf.function of `inputs`, returns {name: concrete function}, for
        example models/image_signature.py's, which decodes images before calling it.
    """
    if not input_signatures:
        raise ValueError("at least one input signature is needed")
    if polymorphic_shapes is not None and len(input_signatures) != 1:
        raise ValueError("a batch-polymorphic export takes exactly one input signature")
    tf_fn = jax2tf.convert(
        jax_fn,
        polymorphic_shapes=[None, polymorphic_shapes],
        with_gradient=with_gradient,
        native_serialization_platforms=tuple(platforms),
    )
    param_vars = jax.tree_util.tree_map_with_path(
        lambda path, value: tf.Variable(
            value, trainable=with_gradient, name=_variable_name(path) or "param"
        ),
        params,
    )
    # Each TensorSpec's name becomes the signature's input name (the argument's, if unnamed).
    tf_graph = tf.function(
        lambda inputs: tf_fn(param_vars, inputs), autograph=False, jit_compile=compile_model
    )
    # jax2tf serializes the JAX function when it is traced and when it is saved.
    with writing_format(serving_format):
        serving_fn = tf_graph.get_concrete_function(input_signatures[0])
        for signature in input_signatures[1:]:
            tf_graph.get_concrete_function(signature)
        signatures = {tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: serving_fn}
        if extra_signatures:
            signatures.update(extra_signatures(tf_graph))
        tf.saved_model.save(
            _reusable_module(tf_graph, param_vars),
            model_dir,
            signatures=signatures,
            options=save_model_options,
        )
    if serving_format:
        problems = format_problems(xla_call_modules(model_dir), serving_format)
        if problems:
            raise ExportFormatError(
                f"JAX {jax.__version__} wrote ops newer than the format asked for "
                f"({'; '.join(problems)}): writing_format no longer controls JAX's format. "
                "Pin the jax of requirements.txt, or update writing_format."
            )


def _reusable_module(tf_graph, param_vars) -> tf.train.Checkpoint:
    """TF Hub's reusable SavedModel interface, plus `params` in the JAX structure.

    __call__, variables, trainable_variables and regularization_losses let the
    reloaded object be called, fine-tuned or put into a Keras model. (A
    tf.Module's variables and trainable_variables cannot be assigned.)
    """
    module = tf.train.Checkpoint()
    module.params = param_vars
    module.variables = tf.nest.flatten(param_vars)
    module.trainable_variables = [v for v in module.variables if v.trainable]
    module.regularization_losses = []
    module.__call__ = tf_graph
    return module


@contextlib.contextmanager
def writing_format(serving_format: ServingFormat | None) -> Iterator[None]:
    """While active, jax2tf writes `serving_format` (None: JAX's newest).

    The calling convention is a public JAX option. The StableHLO version is not:
    JAX picks it in jax._src.export._export._module_to_bytecode with
    `hlo.get_version_from_compatibility_requirement(WEEK_4)`, a version about
    a month old. This caps that function's answer at the format's StableHLO.
    It is private API: if JAX moves it, this raises ExportFormatError, and
    convert_and_save_model checks the saved ops whatever JAX does.
    """
    if serving_format is None:
        yield
        return
    from jax._src.export import _export

    hlo = getattr(_export, "hlo", None)
    pick_version = getattr(hlo, "get_version_from_compatibility_requirement", None)
    if pick_version is None:
        raise ExportFormatError(
            f"JAX {jax.__version__} no longer chooses its StableHLO version through "
            "jax._src.export._export.hlo.get_version_from_compatibility_requirement, so "
            "writing_format cannot lower it. Pin the jax of requirements.txt, or update "
            "writing_format in saved_model_lib.py."
        )
    calling_convention = min(
        serving_format.calling_convention_version,
        jax.export.maximum_supported_calling_convention_version,
    )
    if calling_convention < jax.export.minimum_supported_calling_convention_version:
        raise ExportFormatError(
            f"JAX {jax.__version__} writes calling convention "
            f"{jax.export.minimum_supported_calling_convention_version} or newer; the target "
            f"format allows {serving_format.calling_convention_version} at most. Use an older JAX."
        )
    if _version_key(serving_format.stablehlo_version) < _version_key(hlo.get_minimum_version()):
        raise ExportFormatError(
            f"JAX {jax.__version__} writes StableHLO {hlo.get_minimum_version()} or newer; the "
            f"target format allows {serving_format.stablehlo_version} at most. Use an older JAX."
        )

    def capped(requirement):
        return min(pick_version(requirement), serving_format.stablehlo_version, key=_version_key)

    previous = jax.config.jax_export_calling_convention_version
    hlo.get_version_from_compatibility_requirement = capped
    jax.config.update("jax_export_calling_convention_version", calling_convention)
    try:
        yield
    finally:
        hlo.get_version_from_compatibility_requirement = pick_version
        jax.config.update("jax_export_calling_convention_version", previous)


def xla_call_modules(model_dir: str) -> list[XlaCallModuleInfo]:
    """The XlaCallModule ops of the SavedModel in `model_dir`, read without running it."""
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(model_dir, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    modules = []
    for meta_graph in saved_model.meta_graphs:
        graph = meta_graph.graph_def
        nodes = [*graph.node, *(n for f in graph.library.function for n in f.node_def)]
        for node in nodes:
            if node.op != "XlaCallModule":
                continue
            modules.append(
                XlaCallModuleInfo(
                    calling_convention_version=node.attr["version"].i,
                    platforms=tuple(p.decode() for p in node.attr["platforms"].list.s),
                    stablehlo_version=stablehlo_producer(node.attr["module"].s),
                )
            )
    return modules


def stablehlo_producer(module: bytes) -> str:
    """The StableHLO version that serialized `module`, e.g. "1.9.1"; "unknown" if unreadable.

    A StableHLO portable artifact is MLIR bytecode: the magic b"ML\xefR", the
    bytecode version (a varint of 1 to 9 bytes), then the producer as a
    NUL-terminated string, "StableHLO_v1.9.1".
    """
    match = re.match(rb"ML\xefR.{1,9}?StableHLO_v(\d+\.\d+\.\d+)\x00", module, re.DOTALL)
    return match[1].decode() if match else "unknown"


def format_problems(
    modules: Sequence[XlaCallModuleInfo], serving_format: ServingFormat
) -> list[str]:
    """Why a server that reads `serving_format` cannot read `modules`; empty if it can."""
    problems = set()
    for module in modules:
        if module.calling_convention_version > serving_format.calling_convention_version:
            problems.add(
                f"calling convention {module.calling_convention_version} > "
                f"{serving_format.calling_convention_version}"
            )
        if module.stablehlo_version == "unknown" or _version_key(
            module.stablehlo_version
        ) > _version_key(serving_format.stablehlo_version):
            problems.add(
                f"StableHLO {module.stablehlo_version} > {serving_format.stablehlo_version}"
            )
    return sorted(problems)


def write_warmup_requests(
    model_dir: str,
    batches: Iterable[np.ndarray | dict[str, np.ndarray]],
    *,
    model_name: str,
    input_name: str = INPUT_NAME,
    signature_name: str = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY,
    extra_requests: Iterable[tuple[str, str, np.ndarray]] = (),
) -> str:
    """Writes WARMUP_FILE: a PredictRequest for each of `batches`; returns its path.

    A batch is an array, sent as `input_name`, or a dict of arrays by input name.

    TensorFlow Serving replays these requests when it loads the version, before
    the version takes traffic. jit_compile compiles once per input shape, so
    give a batch of each shape that clients send: without it, the first
    request of each shape waits for XLA's compilation. extra_requests:
    (signature_name, input_name, batch) of requests to other signatures. Needs
    the package tensorflow-serving-api.
    """
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(model_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        requests = [(signature_name, input_name, batch) for batch in batches]
        for signature, name, batch in [*requests, *extra_requests]:
            log = prediction_log_pb2.PredictionLog()
            request = log.predict_log.request
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature
            for key, array in (batch if isinstance(batch, dict) else {name: batch}).items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(array))
            writer.write(log.SerializeToString())
    return path


def write_validation_batch(
    model_dir: str,
    inputs: np.ndarray | dict[str, np.ndarray],
    outputs: np.ndarray,
    *,
    atol: float,
    rtol: float,
    extra: dict[str, np.ndarray] | None = None,
) -> str:
    """Writes VALIDATION_FILE: inputs, the JAX function's outputs on them, and the tolerance.

    One input is stored as `inputs`, named inputs as `inputs.NAME` each.

    check_savedmodel.py runs the SavedModel on `inputs` with whatever
    TensorFlow it finds and compares with `outputs`, so the model can be
    checked later, on any machine, against its own JAX answers. extra: more
    arrays to store, such as another signature's inputs and expected outputs.
    """
    path = os.path.join(model_dir, VALIDATION_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    named = {f"inputs.{k}": v for k, v in inputs.items()} if isinstance(inputs, dict) else {}
    arrays = named or {"inputs": inputs}
    np.savez(path, **arrays, outputs=outputs, atol=atol, rtol=rtol, **(extra or {}))
    return path


def _variable_name(path: tuple) -> str:
    """A pytree path like ['params']['Dense_0']['kernel'] -> params/Dense_0/kernel."""
    parts = (str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
    return re.sub(r"[^A-Za-z0-9_./-]", "_", "/".join(parts))


def _version_key(version: str) -> tuple[int, ...]:
    """ "1.9.1" -> (1, 9, 1), so that versions compare as numbers."""
    return tuple(int(part) for part in version.split("."))
