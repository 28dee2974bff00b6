"""The command line of deploy/: `make manifests` and `make deploy-check`.

    python -m deploy render --out=deploy/out --image=tensorflow/serving:2.20.0 \
        [--tf_serving_version=2.20]
    python -m deploy check --out=deploy/out [--tf_serving_version=2.20]

render.py and check.py hold the work and read no flag; this reads them.
"""

import os
import sys

from absl import app, flags

from deploy import check, render
from serving import releases
from serving.status import ServingError

_OUT = flags.DEFINE_string(
    "out", os.path.join(render.HERE, "out"), "The rendered folder (render replaces it)."
)
_MODEL_CONFIG = flags.DEFINE_string(
    "model_config", os.path.join(render.ROOT, "serving", "models.config"), "The models to serve."
)
_SERVING_DIR = flags.DEFINE_string(
    "serving_dir",
    os.path.join(render.ROOT, "serving"),
    "render: where batching.config and monitoring.config are.",
)
_IMAGE = flags.DEFINE_string(
    "image", None, "render: TensorFlow Serving's image, pinned (tensorflow/serving:2.20.0)."
)
_MODELS_URI = flags.DEFINE_string(
    "models_uri",
    "gs://YOUR-BUCKET/models",
    "render: where the model folders are, for the gcs overlay and KServe (gs://bucket/path).",
)
_TF_SERVING_VERSION = flags.DEFINE_string(
    "tf_serving_version",
    "",
    "The release the export targets (TF_SERVING_VERSION); empty: the default, the newest "
    "release with an image. render refuses nightly, and a release without an image.",
)


def run_render() -> None:
    if not _IMAGE.value:
        raise app.UsageError("render needs --image, the pinned TensorFlow Serving image")
    try:
        render.pinned_release(_TF_SERVING_VERSION.value)
        files = render.render(
            _OUT.value, _MODEL_CONFIG.value, _SERVING_DIR.value, _IMAGE.value, _MODELS_URI.value
        )
    except (render.RenderError, ServingError) as e:
        sys.exit(f"error: {e}")
    print(f"Rendered {len(files)} files into {_OUT.value}/rendered (image {_IMAGE.value}).")


def run_check() -> None:
    docs = check.load(_OUT.value)
    if not docs:
        sys.exit(f"error: nothing rendered under {_OUT.value}/rendered: run make manifests")
    try:
        oldest = check.oldest_release(_TF_SERVING_VERSION.value)
    except releases.ReleaseError as e:
        sys.exit(f"error: {e}")
    problems = check.schema_problems(docs) + check.policy_problems(docs, oldest)
    for problem in problems:
        print(f"FAILED: {problem}")
    if problems:
        sys.exit(f"error: {len(problems)} problem(s) in {_OUT.value}/rendered")
    print(
        f"{len(docs)} objects valid (Kubernetes {check.KUBERNETES_VERSION}, strict) and as "
        "the policies want."
    )


COMMANDS = {"render": run_render, "check": run_check}


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise app.UsageError(f"usage: python -m deploy {{{'|'.join(COMMANDS)}}} [flags]")
    COMMANDS[argv[1]]()


if __name__ == "__main__":
    app.run(main)
