"""Convert a JAX function with jax2tf and save it as a servable SavedModel.

Copy this file alone into your project, with tests/test_saved_model_lib.py: it
depends only on jax and tensorflow (and tensorflow-serving-api for warmup).

The pieces, because serving needs all of them:

- `convert_and_save_model`: jax2tf (native serialization) turns `jax_fn(params,
  inputs)` into a tf.function. The parameters become tf.Variables rather than
  constants baked into the graph: the GraphDef stays small (protobufs are
  capped at 2 GB) and the weights can be read or fine-tuned like any other
  SavedModel's. `jit_compile=True` is what TensorFlow Serving needs to run the
  XLA ops of the converted function (with --xla_cpu_compilation_enabled).

- Versions on disk. TensorFlow Serving polls `base_dir` and serves the highest
  numeric subdirectory. A version must therefore appear complete or not at
  all: `staging_directory` gives a hidden (non-numeric, so never served)
  directory beside the versions, and `publish_version` renames it into place
  atomically. An interrupted export leaves neither a version nor a staging
  directory behind.

- The format, for the server you run. The converted function is an
  `XlaCallModule` op holding a StableHLO module and a calling-convention
  version. TensorFlow Serving X.Y runs TensorFlow X.Y, which reads only the
  formats it knows: JAX writes the newest ones by default. `tf_serving_version`
  writes what that release reads (TF_SERVING_RUNTIMES), and the saved ops are
  checked against it, so an export never claims a release it cannot serve on.

- What travels with a version, in assets.extra/ (model servers ignore it
  but for warmup): `write_warmup_requests`, which TensorFlow Serving replays
  before the version takes traffic, so that XLA compiles then and not on the
  first request; `write_validation_batch`, inputs and the JAX outputs on
  them, to check the SavedModel later with any TensorFlow.
"""

import contextlib
import ctypes
import dataclasses
import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import jax
import numpy as np
import tensorflow as tf
from jax.experimental import jax2tf
from tensorflow.core.protobuf import saved_model_pb2

STAGING_PREFIX = ".staging-"
# The serving signature's input name: the argument name of the saved function.
INPUT_NAME = "inputs"
# Where TensorFlow Serving looks for the requests that warm a version up.
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# The export's record of itself (saved_model_main.py writes it). `make clean`
# deletes only the versions whose record names EXPORTED_BY.
EXPORT_INFO_FILE = os.path.join("assets.extra", "export_info.json")
EXPORTED_BY = "jax2tf-serving saved_model_main.py"
# Inputs and JAX outputs of a few examples, for checking the SavedModel later
# with any TensorFlow (check_savedmodel.py, make compat); servers ignore it.
VALIDATION_FILE = os.path.join("assets.extra", "validation_batch.npz")


@dataclasses.dataclass(frozen=True)
class ServingRuntime:
    """The newest export format that one TensorFlow runtime reads."""

    # call_module_maximum_supported_version() in the wheel's
    # tensorflow/compiler/tf2xla/python/xla.py.
    calling_convention_version: int
    # getCurrentVersion() in the wheel's
    # tensorflow/include/external/stablehlo/stablehlo/dialect/Version.h.
    stablehlo_version: str


# TensorFlow Serving X.Y runs TensorFlow X.Y. Read off the tensorflow-cpu
# wheels 2.16.1, 2.16.2, 2.17.1, 2.18.1, 2.19.1, 2.20.0 and 2.21.0 (patch
# releases keep their minor release's StableHLO). Older releases read calling
# convention 8 at most, which JAX no longer writes (it writes 9 and 10).
TF_SERVING_RUNTIMES = {
    "2.16": ServingRuntime(9, "0.17.7"),
    "2.17": ServingRuntime(9, "1.1.1"),
    "2.18": ServingRuntime(9, "1.7.3"),
    "2.19": ServingRuntime(9, "1.9.1"),
    "2.20": ServingRuntime(10, "1.12.1"),
    "2.21": ServingRuntime(10, "1.13.7"),
}


class ExportFormatError(ValueError):
    """No export format fits the requested TensorFlow Serving release."""


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
    input_signatures: Sequence[tf.TensorSpec],
    polymorphic_shapes: str | None = None,
    with_gradient: bool = False,
    compile_model: bool = True,
    platforms: Sequence[str] = ("cpu",),
    tf_serving_version: str | None = None,
    save_model_options: tf.saved_model.SaveOptions | None = None,
) -> None:
    """Converts `jax_fn(params, inputs)` with jax2tf and saves a SavedModel.

    Args:
      jax_fn: a JAX function of (params, inputs); both may be pytrees.
      params: the parameters, saved as (non-trainable unless with_gradient)
        tf.Variables named after their path in the pytree.
      model_dir: where to write the SavedModel.
      input_signatures: tf.TensorSpecs of `inputs`. The first becomes the
        `serving_default` signature; its name is the signature's input name.
        The others are traced too, so that callers of the reloaded object with
        those shapes need no retracing.
      polymorphic_shapes: jax2tf polymorphic shape of `inputs`, e.g.
        "(b, ...)" for any batch size; the first signature then has None in
        that dimension. Needs exactly one input signature.
      with_gradient: save the gradient too (for fine-tuning the SavedModel).
      compile_model: jit_compile the tf.function; TensorFlow Serving needs it.
      platforms: where the SavedModel can run: "cpu", "cuda", "rocm", "tpu".
        One export can serve on several, e.g. ("cpu", "cuda").
      tf_serving_version: the oldest TensorFlow Serving release that must
        serve the model, e.g. "2.19" or "2.19.1" (TF_SERVING_RUNTIMES). None
        writes JAX's newest format. Raises ExportFormatError if no format fits,
        or if the saved ops turn out newer than the release reads.
      save_model_options: passed to tf.saved_model.save.
    """
    if not input_signatures:
        raise ValueError("at least one input signature is needed")
    if polymorphic_shapes is not None and len(input_signatures) != 1:
        raise ValueError("a batch-polymorphic export takes exactly one input signature")
    runtime = serving_runtime(tf_serving_version) if tf_serving_version else None
    # jax2tf serializes the function when it is traced, here and when saving.
    with export_format(runtime):
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
        # The argument's name becomes the signature's input name (INPUT_NAME), the
        # key of every gRPC and REST request.
        tf_graph = tf.function(
            lambda inputs: tf_fn(param_vars, inputs), autograph=False, jit_compile=compile_model
        )
        serving_fn = tf_graph.get_concrete_function(input_signatures[0])
        for signature in input_signatures[1:]:
            tf_graph.get_concrete_function(signature)
        # TF Hub's "reusable SavedModel" interface (__call__, variables,
        # trainable_variables, regularization_losses), so that the reloaded
        # object can be called, fine-tuned or put into a Keras model; plus
        # `params`, the variables in the structure of the JAX parameters.
        # In-process, the concrete functions of the reloaded __call__ are the
        # cheapest call: one XLA launch, without the signature's graph wrapper.
        # (tf.Module's variables and trainable_variables cannot be assigned.)
        module = tf.train.Checkpoint()
        module.params = param_vars
        module.variables = tf.nest.flatten(param_vars)
        module.trainable_variables = [v for v in module.variables if v.trainable]
        module.regularization_losses = []
        module.__call__ = tf_graph
        tf.saved_model.save(
            module,
            model_dir,
            signatures={tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: serving_fn},
            options=save_model_options,
        )
    if runtime:
        problems = format_problems(xla_call_modules(model_dir), runtime)
        if problems:
            raise ExportFormatError(
                f"JAX {jax.__version__} wrote ops that TensorFlow Serving {tf_serving_version} "
                f"cannot read ({'; '.join(problems)}): export_format no longer controls JAX's "
                "format. Use the JAX version this file was tested with, or update export_format."
            )


def release_of(tf_serving_version: str) -> str:
    """ "2.19.1" or "2.19" -> "2.19": TensorFlow Serving X.Y runs TensorFlow X.Y."""
    match = re.fullmatch(r"\s*(\d+)\.(\d+)(\.[\w.+-]*)?\s*", tf_serving_version)
    if not match:
        raise ExportFormatError(
            f"TF_SERVING_VERSION={tf_serving_version!r} is not a release number: give the "
            "TensorFlow Serving release you run, such as 2.19 or 2.19.1 (empty: JAX's newest "
            "format)."
        )
    return f"{int(match[1])}.{int(match[2])}"


def serving_runtime(tf_serving_version: str) -> ServingRuntime:
    """The format that TensorFlow Serving `tf_serving_version` ("2.19", "2.19.1") reads."""
    release = release_of(tf_serving_version)
    if release in TF_SERVING_RUNTIMES:
        return TF_SERVING_RUNTIMES[release]
    releases = sorted(TF_SERVING_RUNTIMES, key=release_key)
    oldest, newest = releases[0], releases[-1]
    if release_key(release) < release_key(oldest):
        raise ExportFormatError(
            f"TensorFlow Serving {tf_serving_version} cannot run this export: its TensorFlow "
            f"reads XlaCallModule calling convention 8 at most, and JAX {jax.__version__} writes "
            f"{jax.export.minimum_supported_calling_convention_version} or newer. Serve with "
            f"TensorFlow Serving {oldest} or newer (for example the Docker image "
            f"tensorflow/serving:{oldest}.1), or export with an older JAX whose "
            "jax.export.minimum_supported_calling_convention_version is 8 or less."
        )
    raise ExportFormatError(
        f"TensorFlow Serving {tf_serving_version} is newer than the releases this export knows "
        f"({oldest} to {newest}). Leave TF_SERVING_VERSION empty for JAX's newest format, or "
        f"name {newest}; then check the export with `make compat`."
    )


@contextlib.contextmanager
def export_format(runtime: ServingRuntime | None) -> Iterator[None]:
    """While active, jax2tf writes the format that `runtime` reads (None: JAX's default).

    The calling convention is a public JAX option. The StableHLO version is not:
    JAX picks it in jax._src.export._export._module_to_bytecode with
    `hlo.get_version_from_compatibility_requirement(WEEK_4)`, a version about
    a month old. This caps that function's answer at the runtime's StableHLO.
    It is private API: if JAX moves it, this raises ExportFormatError, and
    convert_and_save_model checks the saved ops whatever JAX does.
    """
    if runtime is None:
        yield
        return
    from jax._src.export import _export

    hlo = getattr(_export, "hlo", None)
    pick_version = getattr(hlo, "get_version_from_compatibility_requirement", None)
    if pick_version is None:
        raise ExportFormatError(
            f"JAX {jax.__version__} no longer chooses its StableHLO version through "
            "jax._src.export._export.hlo.get_version_from_compatibility_requirement, so "
            "export_format cannot lower it. Pin the jax of requirements.txt, or update "
            "export_format in saved_model_lib.py."
        )
    calling_convention = min(
        runtime.calling_convention_version, jax.export.maximum_supported_calling_convention_version
    )
    if calling_convention < jax.export.minimum_supported_calling_convention_version:
        raise ExportFormatError(
            f"JAX {jax.__version__} writes calling convention "
            f"{jax.export.minimum_supported_calling_convention_version} or newer; the runtime "
            f"reads {runtime.calling_convention_version} at most. Use an older JAX."
        )
    if release_key(runtime.stablehlo_version) < release_key(hlo.get_minimum_version()):
        raise ExportFormatError(
            f"JAX {jax.__version__} writes StableHLO {hlo.get_minimum_version()} or newer; the "
            f"runtime reads {runtime.stablehlo_version} at most. Use an older JAX."
        )

    def capped(requirement):
        return min(pick_version(requirement), runtime.stablehlo_version, key=release_key)

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


def format_problems(modules: Sequence[XlaCallModuleInfo], runtime: ServingRuntime) -> list[str]:
    """Why `runtime` cannot read `modules`; empty if it can."""
    problems = set()
    for module in modules:
        if module.calling_convention_version > runtime.calling_convention_version:
            problems.add(
                f"calling convention {module.calling_convention_version} > "
                f"{runtime.calling_convention_version}"
            )
        if module.stablehlo_version == "unknown" or release_key(
            module.stablehlo_version
        ) > release_key(runtime.stablehlo_version):
            problems.add(f"StableHLO {module.stablehlo_version} > {runtime.stablehlo_version}")
    return sorted(problems)


def write_warmup_requests(
    model_dir: str,
    batches: Iterable[np.ndarray],
    *,
    model_name: str,
    input_name: str = INPUT_NAME,
    signature_name: str = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY,
) -> str:
    """Writes WARMUP_FILE: a PredictRequest for each of `batches`; returns its path.

    TensorFlow Serving replays these requests when it loads the version, before
    the version takes traffic. jit_compile compiles once per input shape, so
    give a batch of each shape that clients send: without it, the first
    request of each shape waits for XLA's compilation. Needs the package
    tensorflow-serving-api.
    """
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(model_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for batch in batches:
            log = prediction_log_pb2.PredictionLog()
            request = log.predict_log.request
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature_name
            request.inputs[input_name].CopyFrom(tf.make_tensor_proto(batch))
            writer.write(log.SerializeToString())
    return path


def read_export_info(version_dir: str) -> dict:
    """The version's EXPORT_INFO_FILE; empty if it has none, or none that reads as a record."""
    try:
        with open(os.path.join(version_dir, EXPORT_INFO_FILE)) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def write_validation_batch(
    model_dir: str, inputs: np.ndarray, outputs: np.ndarray, *, atol: float, rtol: float
) -> str:
    """Writes VALIDATION_FILE: inputs, the JAX function's outputs on them, and the tolerance.

    check_savedmodel.py runs the SavedModel on `inputs` with whatever
    TensorFlow it finds and compares with `outputs`, so the model can be
    checked later, on any machine, against its own JAX answers.
    """
    path = os.path.join(model_dir, VALIDATION_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path, inputs=inputs, outputs=outputs, atol=atol, rtol=rtol)
    return path


def release_key(version: str) -> tuple[int, ...]:
    """ "1.9.1" -> (1, 9, 1), so that versions compare as numbers."""
    return tuple(int(part) for part in version.split("."))


def version_dirs(base_dir: str) -> dict[int, str]:
    """version number -> its directory under `base_dir`, as TensorFlow Serving reads them.

    Numeric names only ("00000123" is version 123); anything else, such as a
    staging directory, is not a version.
    """
    try:
        names = os.listdir(base_dir)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return {
        int(name): os.path.join(base_dir, name)
        for name in names
        if re.fullmatch(r"[0-9]+", name) and os.path.isdir(os.path.join(base_dir, name))
    }


def versions(base_dir: str) -> list[int]:
    """The version numbers under `base_dir`, in increasing order."""
    return sorted(version_dirs(base_dir))


def next_version(base_dir: str) -> int:
    """1 + the highest version under `base_dir`, 1 if there is none."""
    return max(versions(base_dir), default=0) + 1


@contextlib.contextmanager
def staging_directory(base_dir: str) -> Iterator[str]:
    """A fresh directory beside the versions, removed on exit unless published.

    It stays locked (flock) while in use, so that stale_staging_dirs can tell
    it from the leftover of a killed export.
    """
    os.makedirs(base_dir, exist_ok=True)
    path = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=base_dir)
    lock = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # mkdtemp makes it private (0700); a published version must be readable
        # by a model server running as another user, as in a container.
        os.chmod(path, 0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(lock)  # After the removal: never an unlocked directory in use.


def stale_staging_dirs(base_dir: str) -> list[str]:
    """Staging directories under `base_dir` that no running export holds (killed ones)."""
    stale = []
    for name in sorted(os.listdir(base_dir)) if os.path.isdir(base_dir) else []:
        path = os.path.join(base_dir, name)
        if not name.startswith(STAGING_PREFIX) or not os.path.isdir(path):
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # An export is writing it.
        finally:
            os.close(fd)
        stale.append(path)
    return stale


def publish_version(
    staging_dir: str, base_dir: str, version: int, *, overwrite: bool = False
) -> str:
    """Renames `staging_dir` to `base_dir/version`, atomically; returns that path.

    Raises FileExistsError if the version exists, unless `overwrite`: then the
    two directories are exchanged in one step, so that the version is never
    missing, and the old one (now at `staging_dir`) is deleted. Where the
    system cannot exchange (renameat2 is Linux's), the old version is moved
    aside first, and for a moment there is none.
    """
    old_dir = version_dir(base_dir, version)
    if old_dir and not overwrite:
        raise FileExistsError(errno.EEXIST, "version exists", old_dir)
    if old_dir:
        if not _exchange(staging_dir, old_dir):
            _replace_in_two_steps(staging_dir, old_dir)
        shutil.rmtree(staging_dir, ignore_errors=True)
        return old_dir
    target = os.path.join(base_dir, str(version))
    try:
        os.rename(staging_dir, target)
    except OSError as e:
        # Another export took this version after the check above: rename()
        # refuses to replace a non-empty directory.
        if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(errno.EEXIST, "version exists", target) from e
        raise
    return target


def _exchange(path: str, other: str) -> bool:
    """Swaps two directories in one step; False where the system cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    at_fdcwd, rename_exchange = -100, 2  # From <fcntl.h> and <linux/fs.h>.
    if renameat2(at_fdcwd, os.fsencode(path), at_fdcwd, os.fsencode(other), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False  # An old kernel, or a file system that cannot exchange.
    raise OSError(error, os.strerror(error), other)


def _replace_in_two_steps(staging_dir: str, old_dir: str) -> None:
    """Moves `old_dir` aside, `staging_dir` to `old_dir` (or the old one back), deletes the old."""
    aside = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=os.path.dirname(old_dir))
    os.rename(old_dir, os.path.join(aside, "old"))
    try:
        os.rename(staging_dir, old_dir)
    except OSError:
        os.rename(os.path.join(aside, "old"), old_dir)
        raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def find_version(base_dir: str, version: int | None = None) -> tuple[int, str]:
    """`version` (default: the newest) and its directory; LookupError if there is none."""
    version = version or max(versions(base_dir), default=0)
    path = version_dir(base_dir, version)
    if path is None:
        raise LookupError(
            f"no version {version} under {base_dir}" if version else f"no version under {base_dir}"
        )
    return version, path


def version_dir(base_dir: str, version: int) -> str | None:
    """The directory of `version` (maybe spelled with leading zeros), or None."""
    return version_dirs(base_dir).get(version)


def _variable_name(path: tuple) -> str:
    """A pytree path like ['params']['Dense_0']['kernel'] -> params/Dense_0/kernel."""
    parts = (str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
    return re.sub(r"[^A-Za-z0-9_./-]", "_", "/".join(parts))
