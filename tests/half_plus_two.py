"""Rebuilds of TensorFlow Serving's test model, half_plus_two: y = 0.5 * x + 2.

TensorFlow Serving's tests run against SavedModels that its
servables/tensorflow/testdata/saved_model_half_plus_two.py writes; these
functions write the same graphs and signatures (a rebuild, not its files):
the TF1 graph that its C++ and REST tests load, and the TF2 module of its
*Tf2 tests. Signatures: serving_default (x -> y), regress_x_to_y,
regress_x_to_y2 (0.5 * x + 3), regress_x2_to_y3 and classify_x_to_y, the
regress and classify ones on serialized tf.Examples with features x and x2.
"""

import tensorflow as tf

FEATURES = {
    "x": tf.io.FixedLenFeature([1], tf.float32),
    "x2": tf.io.FixedLenFeature([1], tf.float32, default_value=[0.0]),
}


def write_tf1(path, b: float = 2.0) -> None:
    """The TF1 graph (SavedModelBuilder), as TensorFlow Serving's C++ and REST tests load it.

    b=3.0 rebuilds its half_plus_three model (y = 0.5 * x + 3), the second
    model of its model config tests.
    """
    v1 = tf.compat.v1
    sig = v1.saved_model.signature_def_utils.build_signature_def
    info = v1.saved_model.utils.build_tensor_info
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as session:
        a, b, c = (v1.Variable(v, name=n) for v, n in ((0.5, "a"), (b, "b"), (3.0, "c")))
        serialized = v1.placeholder(tf.string, shape=[None], name="tf_example")
        example = tf.io.parse_example(serialized, FEATURES)
        x = tf.identity(example["x"], name="x")
        y = tf.identity(a * x + b, name="y")
        y2 = tf.identity(a * x + c, name="y2")
        x2 = tf.identity(example["x2"], name="x2")
        a2, c2 = v1.Variable(0.5, name="a2"), v1.Variable(3.0, name="c2")
        y3 = tf.identity(a2 * x2 + c2, name="y3")

        def regress(inputs, outputs):
            return sig(
                {"inputs": info(inputs)}, {"outputs": info(outputs)}, "tensorflow/serving/regress"
            )

        signatures = {
            "serving_default": sig({"x": info(x)}, {"y": info(y)}, "tensorflow/serving/predict"),
            "regress_x_to_y": regress(serialized, y),
            "regress_x_to_y2": regress(serialized, y2),
            "regress_x2_to_y3": regress(x2, y3),
            "classify_x_to_y": sig(
                {"inputs": info(serialized)}, {"scores": info(y)}, "tensorflow/serving/classify"
            ),
        }
        session.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(
            session, [tf.saved_model.SERVING], signature_def_map=signatures
        )
        builder.save()


class _HalfPlusTwo(tf.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = tf.Variable(0.5), tf.Variable(2.0), tf.Variable(3.0)

    @tf.function(input_signature=[tf.TensorSpec([1], tf.float32)])
    def predict(self, x):
        return {"y": self.a * x + self.b}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress_xy(self, serialized):
        return {"outputs": self.a * tf.io.parse_example(serialized, FEATURES)["x"] + self.b}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress_xy2(self, serialized):
        return {"outputs": self.a * tf.io.parse_example(serialized, FEATURES)["x"] + self.c}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify_xy(self, serialized):
        return {"scores": self.a * tf.io.parse_example(serialized, FEATURES)["x"] + self.b}


def write_tf2(path) -> None:
    """The TF2 module (tf.saved_model.save), as TensorFlow Serving's *Tf2 tests load it."""
    module = _HalfPlusTwo()
    tf.saved_model.save(
        module,
        str(path),
        signatures={
            "serving_default": module.predict,
            "regress_x_to_y": module.regress_xy,
            "regress_x_to_y2": module.regress_xy2,
            "classify_x_to_y": module.classify_xy,
        },
    )
