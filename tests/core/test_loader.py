"""MODEL as a registry name or package.module:attribute (models/loader.py), the protocol of
models/base.py, and a bad MODEL through saved_model_main's command line: one line, nothing
written."""

import itertools
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_export import command_line

import saved_model_main
from models import base, get_model, loader
from models.loader import ModelError

_NAMES = itertools.count()  # Imported modules stay in sys.modules: a new name each time.


@pytest.fixture
def package(tmp_path, monkeypatch):
    """package(source) -> "pkgN.modM": a new module of a package on sys.path, with `source`."""
    monkeypatch.syspath_prepend(str(tmp_path))
    name = f"pkg{next(_NAMES)}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")

    def write(source: str) -> str:
        module = f"mod{next(_NAMES)}"
        (tmp_path / name / f"{module}.py").write_text(textwrap.dedent(source))
        return f"{name}.{module}"

    return write


TINY = """
    import jax, jax.numpy as jnp
    from models.base import Model

    def init(rng):
        return {"w": jnp.ones((3, 1))}

    def apply(params, x):
        return x @ params["w"]

    MODEL = Model(name="tiny", inputs=jax.ShapeDtypeStruct((3,), jnp.float32),
                  init=init, apply=apply)

    def make_model():
        return MODEL

    class Duck:  # The protocol's parts, without the Model class.
        name, inputs, init, apply = "duck", jax.ShapeDtypeStruct((3,), jnp.float32), init, apply
"""


def test_the_mnist_models_are_models_of_the_protocol():
    for name in ("mnist_flax", "mnist_pure_jax"):
        model = get_model(name)
        assert model.name == name and model.dataset == "mnist" and model.num_classes == 10
        assert model.input_specs() == base.InputSpec((28, 28, 1), np.dtype("float32"))
        params = model.init(jax.random.key(0))
        images = jnp.zeros((2, 28, 28, 1))
        assert model.apply(params, images).shape == (2, 10)
        assert model.features(params, images).shape[0] == 2


@pytest.mark.parametrize("attribute", ["MODEL", "make_model", "Duck"])
def test_a_model_object_a_factory_or_a_duck_loads(package, attribute):
    model = loader.load(f"{package(TINY)}:{attribute}")
    assert isinstance(model, base.Model) and model.name in ("tiny", "duck")
    assert model.apply(model.init(None), np.ones((2, 3), np.float32)).tolist() == [[3.0], [3.0]]


def test_a_module_of_the_current_directory_loads(tmp_path, monkeypatch):
    (tmp_path / "my_model.py").write_text(textwrap.dedent(TINY))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", ".")])
    assert loader.load("my_model:MODEL").name == "tiny"


def test_a_module_that_does_not_import_shows_its_error_then_what_model_expects(package):
    spec = package("raise RuntimeError('no GPU here')") + ":MODEL"
    with pytest.raises(ModelError) as error:
        loader.load(spec)
    message = str(error.value)
    assert "RuntimeError: no GPU here" in message and "package.module:attribute" in message
    with pytest.raises(ModelError, match="No module named 'not_a_package'"):
        loader.load("not_a_package.model:MODEL")


def test_a_missing_attribute_or_a_non_model_names_what_is_missing(package):
    extra = "NOT_A_MODEL = {'name': 'x'}\nfrom flax import linen as nn\nFLAX_MODULE = nn.Dense(3)\n"
    module = package(textwrap.dedent(TINY) + extra)
    with pytest.raises(ModelError, match="has no attribute 'MODLE'"):
        loader.load(f"{module}:MODLE")
    with pytest.raises(ModelError, match="it has no name, inputs, init, apply"):
        loader.load(f"{module}:NOT_A_MODEL")
    with pytest.raises(ModelError, match=r"Dense is not a model .* it has no inputs \("):
        loader.load(f"{module}:FLAX_MODULE")
    with pytest.raises(ModelError, match="unknown model 'mnist_resnet'"):
        loader.load("mnist_resnet")


def test_the_protocol_refuses_wrong_parts():
    with pytest.raises(base.ProtocolError) as error:
        base.Model(name="has space", inputs={"x": (3,)}, init=None, apply=len, dataset="cifar")
    message = str(error.value)
    for part in ("name 'has space'", "input 'x'", "init is not callable", "dataset 'cifar'"):
        assert part in message


def exit_message(*args: str) -> str:
    with command_line(*args), pytest.raises(SystemExit) as exit_:
        saved_model_main.main([])
    return str(exit_.value.code)


def test_a_bad_model_on_the_command_line_is_one_line_and_leaves_nothing(package, tmp_path):
    model_path = tmp_path / "models"
    for spec, expected in [
        (f"{package('import not_installed_package')}:MODEL", "No module named"),
        (f"{package(TINY)}:MISSING", "has no attribute 'MISSING'"),
        (f"{package(TINY)}:init", "calling init() failed"),
    ]:
        message = exit_message(f"--model={spec}", f"--model_path={model_path}")
        assert message.startswith(f"error: MODEL={spec}: ") and expected in message
        assert "\n" not in message
    assert not model_path.exists()  # Refused before MODEL_PATH is made.


def test_a_model_without_training_needs_a_checkpoint(package, tmp_path):
    model_path = tmp_path / "models"
    message = exit_message(f"--model={package(TINY)}:MODEL", f"--model_path={model_path}")
    assert message == (
        "error: tiny has no training here (its dataset is not mnist): pass the Orbax "
        "checkpoint of its parameters, CHECKPOINT=dir (--checkpoint)."
    )
    assert not model_path.exists()
