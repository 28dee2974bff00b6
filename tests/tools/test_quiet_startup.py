"""tools/quiet_startup.sh: the walkthrough's stderr without TensorFlow's harmless start-up lines."""

import glob

from conftest import run


def test_quiet_startup_drops_only_the_harmless_start_up_lines():
    harmless = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1.1 9370 port.cc:153] oneDNN custom operations are on. You may see",
        "I0000 00:00:1.2 9370 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
        "GPU will not be used.",
        "I0000 00:00:1.3 9370 cpu_feature_guard.cc:227] This TensorFlow binary is optimized",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild",
    ]
    real = [
        "E0000 00:00:1.4 9370 graph_compiler.cc:153] Executor failed to create kernel.",
        "error: the export failed",
        "Traceback (most recent call last):",
        "I1125 14:37:19.14 saved_model_main.py:175] Training mnist_flax for 1 epochs",
    ]
    cuinit = "E0000 00:00:1.5 9370 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error"
    result = run(["tools/quiet_startup.sh"], input="\n".join([*harmless, *real, cuinit]) + "\n")
    kept = result.stdout.splitlines()
    gpu = bool(glob.glob("/dev/nvidia[0-9]*"))
    assert kept == real + ([cuinit] if gpu else [])
