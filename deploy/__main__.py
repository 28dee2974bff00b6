"""The command line of deploy/: `make manifests`, `make deploy-check` and `make deploy`.

    python -m deploy render --out=deploy/out --image=tensorflow/serving:2.20.0 \
        [--tf_serving_version=2.20] [--models_uri=gs://my-bucket/models] [--keep]
    python -m deploy check --out=deploy/out [--tf_serving_version=2.20] [--overlay=gcs] \
        [--checkov=.venv-checkov/bin/checkov]

render.py and check.py hold the work and read no flag; this reads them.
"""

import os
import sys

from absl import app, flags

from deploy import check, render, scan
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
    "",
    "render: where the model folders are, for the gcs overlay and KServe (gs://bucket/path); "
    f"empty: {render.PLACEHOLDER_URI}, a placeholder.",
)
_KEEP = flags.DEFINE_bool(
    "keep",
    False,
    "render: keep the rendering in --out, unless --models_uri names another URI "
    "(make deploy-check and make deploy check and apply what make manifests rendered).",
)
_KUBECTL = flags.DEFINE_string(
    "kubectl", render.KUBECTL, "The kubectl that renders the overlays (kubectl kustomize)."
)
_TF_SERVING_VERSION = flags.DEFINE_string(
    "tf_serving_version",
    "",
    "The release the export targets (TF_SERVING_VERSION); empty: the default, the newest "
    "release with an image. render refuses nightly, and a release without an image.",
)
_CHECKOV = flags.DEFINE_string(
    "checkov",
    "",
    "check: checkov's command (make deploy-check passes CHECKOV_VENV's); its Kubernetes checks "
    "run on the objects, offline. Empty: not run.",
)
_OVERLAY = flags.DEFINE_string(
    "overlay",
    "",
    "check: the overlay `make deploy` is about to apply; refused if it holds the placeholder.",
)


def run_render() -> None:
    if not _IMAGE.value:
        raise app.UsageError("render needs --image, the pinned TensorFlow Serving image")
    out, given = _OUT.value, _MODELS_URI.value
    kept = (render.rendered_for(out) or {}).get("models_uri")
    if _KEEP.value and kept and given in ("", kept):
        return  # `make deploy-check` says what it checks.
    models_uri = given or render.PLACEHOLDER_URI
    try:
        render.pinned_release(_TF_SERVING_VERSION.value)
        files = render.render(
            out, _MODEL_CONFIG.value, _SERVING_DIR.value, _IMAGE.value, models_uri, _KUBECTL.value
        )
    except (render.RenderError, ServingError) as e:
        sys.exit(f"error: {e}")
    print(
        f"Rendered {len(files)} files into {out}/rendered for MODELS_URI={models_uri} "
        f"(image {_IMAGE.value})."
    )


def run_check() -> None:
    out = _OUT.value
    models_uri = (render.rendered_for(out) or {}).get("models_uri")
    if not models_uri:
        sys.exit(f"error: {out} holds no complete rendering: run make manifests")
    try:
        docs = check.load_applied(out, _KUBECTL.value)
        oldest = check.oldest_release(_TF_SERVING_VERSION.value)
    except (render.RenderError, releases.ReleaseError, OSError) as e:
        sys.exit(f"error: {e}")
    problems = check.schema_problems(docs) + check.policy_problems(docs, oldest)
    if _CHECKOV.value:
        try:
            problems += [f"checkov: {p}" for p in scan.checkov_problems(docs, _CHECKOV.value)]
        except scan.ScanError as e:
            sys.exit(f"error: {e}")
    for problem in problems:
        print(f"FAILED: {problem}")
    if problems:
        sys.exit(f"error: {len(problems)} problem(s) in {out}")
    print(
        f"{len(docs)} objects valid (Kubernetes {check.KUBERNETES_VERSION}, strict), every pod "
        "meets the restricted Pod Security Standard, a NetworkPolicy guards each overlay, the "
        "policies hold" + (", and checkov finds nothing unjustified." if _CHECKOV.value else ".")
    )
    if render.PLACEHOLDER_BUCKET in models_uri:
        print(
            f"{out} is rendered for MODELS_URI={models_uri}, a placeholder: the gcs overlay and "
            "KServe need your bucket (make manifests MODELS_URI=gs://your-bucket/models)."
        )
    else:
        print(f"{out} is rendered for MODELS_URI={models_uri}.")
    if _OVERLAY.value:
        problem = check.overlay_problem(docs, _OVERLAY.value)
        if problem:
            sys.exit(f"error: {problem}")


COMMANDS = {"render": run_render, "check": run_check}


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise app.UsageError(f"usage: python -m deploy {{{'|'.join(COMMANDS)}}} [flags]")
    COMMANDS[argv[1]]()


if __name__ == "__main__":
    app.run(main)
