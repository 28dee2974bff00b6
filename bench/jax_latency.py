"""The jitted JAX models' latency, the bound of the benchmark's inference rows.

    python -m bench.jax_latency mnist_flax 1,16,256 200

prints, as one JSON line, the median milliseconds of a call of the jitted
model at each batch size (200 timed calls each). bench.bench calls
`jax_latency_ms` in its own process, and runs this module in a child process
where XLA_FLAGS must differ, since XLA reads them once per process.
"""

import json
import statistics
import time

import jax
import numpy as np
from absl import app

from models import get_model, mnist_data


def timed(fn, repeats: int) -> list[float]:
    """Seconds of each of `repeats` calls of fn(), after one call to warm up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def jax_latency_ms(model_name: str, batch_sizes, repeats: int) -> dict[int, float]:
    """Median ms of the jitted JAX model per batch size (params as the benchmark's exports)."""
    model = get_model(model_name)
    params = model.init(jax.random.PRNGKey(0))
    jitted = jax.jit(model.apply)
    latency = {}
    for batch in batch_sizes:
        images = mnist_data.scale_images(mnist_data.synthetic(batch).images)
        seconds = timed(lambda: np.asarray(jitted(params, images)), repeats)  # noqa: B023
        latency[batch] = statistics.median(seconds) * 1000
    return latency


def main(argv: list[str]) -> None:
    if len(argv) != 4:
        raise app.UsageError("usage: python -m bench.jax_latency MODEL BATCH_SIZES REPEATS")
    model_name, batch_sizes, repeats = argv[1], argv[2].split(","), int(argv[3])
    print(json.dumps(jax_latency_ms(model_name, [int(b) for b in batch_sizes], repeats)))


if __name__ == "__main__":
    app.run(main)
