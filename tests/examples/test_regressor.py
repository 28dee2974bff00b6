"""examples/: the regressor from its training script's Orbax checkpoint to the local
server's answers over gRPC and REST, equal to the JAX function's within atol = rtol = 1e-5.
(tests/docs/test_examples_readme.py runs examples/README.md as a reader follows it.)"""

import os

import jax
import numpy as np
import pytest
from conftest import export_model, local_server

from clients import inputs_client, serving_client
from examples import regressor, train_regressor
from models import checkpoint
from serving import signatures
from tools import check_savedmodel

TOLERANCES = dict(atol=1e-5, rtol=1e-5)  # models/export_lib.py's CPU_TOLERANCES.


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(checkpoint directory, its parameters, a .npz of 4 rows, those rows)."""
    directory = tmp_path_factory.mktemp("regressor")
    params = train_regressor.train(steps=20)
    train_regressor.save(params, str(directory / "checkpoint"))
    rows, _ = train_regressor.synthetic_rows(4, seed=1)
    np.savez(directory / "inputs.npz", **rows)
    return str(directory / "checkpoint"), params, str(directory / "inputs.npz"), rows


def test_the_checkpoint_restores_the_trained_parameters(trained):
    ckpt, params, _, _ = trained
    restored = checkpoint.restore(ckpt, regressor.MODEL)
    assert jax.tree.all(jax.tree.map(np.array_equal, restored, params))


def test_served_answers_equal_the_jax_functions(trained, tmp_path):
    ckpt, params, inputs_file, rows = trained
    path = export_model(
        tmp_path, model="examples.regressor:MODEL", checkpoint=ckpt, inputs=inputs_file
    )
    assert path == str(tmp_path / "regressor" / "1")
    expected = np.asarray(regressor.apply(params, rows))
    with local_server("regressor", tmp_path / "regressor") as server:
        for client in (
            serving_client.GrpcClient(server.grpc_address, "regressor", timeout=30),
            serving_client.RestClient(f"localhost:{server.rest_port}", "regressor", timeout=30),
        ):
            signature = client.signatures()[serving_client.SIGNATURE]
            named = signatures.match_signature(signatures.load(inputs_file), signature)
            outputs = inputs_client.send(client, named, signature)
            assert list(outputs) == ["output_0"] and outputs["output_0"].shape == (4, 1)
            np.testing.assert_allclose(outputs["output_0"], expected, **TOLERANCES)


def test_a_fixed_batch_export_checked_on_inputs_made_from_the_specs(trained, tmp_path):
    """And `make compat`'s check (tools/check_savedmodel.py) runs its named inputs."""
    ckpt, params, _, _ = trained
    path = export_model(
        tmp_path, model="examples.regressor:MODEL", checkpoint=ckpt, serving_batch_size=3
    )
    batch = np.load(os.path.join(path, "assets.extra", "validation_batch.npz"))
    assert sorted(batch.files) == ["atol", "inputs.numeric", "inputs.onehot", "outputs", "rtol"]
    rows = {"numeric": batch["inputs.numeric"], "onehot": batch["inputs.onehot"]}
    assert rows["numeric"].shape == (3, 6)
    np.testing.assert_allclose(batch["outputs"], regressor.apply(params, rows), **TOLERANCES)
    result = check_savedmodel.check(path, "serving_default")
    assert result["runs"] and result["matches"], result
