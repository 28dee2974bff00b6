#!/usr/bin/env bash
# Copies its input to its output, but for the lines TensorFlow prints when it
# starts on a machine without a GPU. They come from C++, before any Python code
# could silence them, and they are no error; yet one of them starts with "E"
# (`failed call to cuInit`), and a newcomer reads it as a failure. The
# Makefile sends the walkthrough's stderr through this; `make VERBOSE=1` does not.
patterns='All log messages before absl::InitializeLog'
patterns+='|oneDNN custom operations are on'
patterns+='|Could not find cuda drivers on your machine'
patterns+='|cpu_feature_guard\.cc|^To enable the following instructions: '
# Only where there is no NVIDIA device: there CUDA cannot start, which means
# nothing. On a machine with one, that line is a real error and passes.
compgen -G '/dev/nvidia[0-9]*' >/dev/null || patterns+='|failed call to cuInit: '
exec grep --line-buffered -v -E "$patterns"
