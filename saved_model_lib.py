"""Convert a JAX function with jax2tf and save it as a servable SavedModel.

Copy this file alone into your project: it depends only on jax and tensorflow.

Two pieces, because serving needs both:

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
"""

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import tensorflow as tf
from jax.experimental import jax2tf

STAGING_PREFIX = ".staging-"
# The serving signature's input name: the argument name of the saved function.
INPUT_NAME = "inputs"
# Where TensorFlow Serving looks for the requests that warm a version up.
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
_VERSION_RE = re.compile(r"^[0-9]+$")


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
      save_model_options: passed to tf.saved_model.save.
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
    # The argument's name becomes the signature's input name (INPUT_NAME), the
    # key of every gRPC and REST request.
    tf_graph = tf.function(
        lambda inputs: tf_fn(param_vars, inputs), autograph=False, jit_compile=compile_model
    )
    serving_fn = tf_graph.get_concrete_function(input_signatures[0])
    for signature in input_signatures[1:]:
        tf_graph.get_concrete_function(signature)
    module = tf.Module()
    # Tracked attributes: the variables are saved, and the reloaded object is
    # callable with the traced shapes (TF Hub's "reusable SavedModel" layout).
    # In-process, the concrete functions of the reloaded __call__ are the
    # cheapest call: one XLA launch, without the signature's graph wrapper.
    module.params = param_vars
    module.__call__ = tf_graph
    tf.saved_model.save(
        module,
        model_dir,
        signatures={tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: serving_fn},
        options=save_model_options,
    )


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
        if _VERSION_RE.match(name) and os.path.isdir(os.path.join(base_dir, name))
    }


def versions(base_dir: str) -> list[int]:
    """The version numbers under `base_dir`, in increasing order."""
    return sorted(version_dirs(base_dir))


def next_version(base_dir: str) -> int:
    """1 + the highest version under `base_dir`, 1 if there is none."""
    return max(versions(base_dir), default=0) + 1


@contextlib.contextmanager
def staging_directory(base_dir: str) -> Iterator[str]:
    """A fresh directory beside the versions, removed on exit unless published."""
    os.makedirs(base_dir, exist_ok=True)
    path = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=base_dir)
    # mkdtemp makes it private (0700); a published version must be readable by
    # a model server running as another user, as in a container.
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def publish_version(
    staging_dir: str, base_dir: str, version: int, *, overwrite: bool = False
) -> str:
    """Renames `staging_dir` to `base_dir/version`, atomically; returns that path.

    Raises FileExistsError if the version exists, unless `overwrite`: then the
    old version is moved aside, and deleted once the new one is in place (or
    put back if that fails).
    """
    target = os.path.join(base_dir, str(version))
    old_dir = version_dir(base_dir, version)
    if old_dir and not overwrite:
        raise FileExistsError(errno.EEXIST, "version exists", old_dir)
    aside = None
    if old_dir:
        aside = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=base_dir)
        os.rename(old_dir, os.path.join(aside, "old"))
    try:
        os.rename(staging_dir, target)
    except OSError as e:
        if aside:
            os.rename(os.path.join(aside, "old"), old_dir)
        # Another export took this version after the check above: rename()
        # refuses to replace a non-empty directory.
        if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(errno.EEXIST, "version exists", target) from e
        raise
    finally:
        if aside:
            shutil.rmtree(aside, ignore_errors=True)
    return target


def version_dir(base_dir: str, version: int) -> str | None:
    """The directory of `version` (maybe spelled with leading zeros), or None."""
    return version_dirs(base_dir).get(version)


def _variable_name(path: tuple) -> str:
    """A pytree path like ['params']['Dense_0']['kernel'] -> params/Dense_0/kernel."""
    parts = (str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
    return re.sub(r"[^A-Za-z0-9_./-]", "_", "/".join(parts))
