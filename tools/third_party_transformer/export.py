#!/usr/bin/env python3
"""Export a small, randomly initialised BERT encoder to ONNX with a third-party
exporter (KerasHub's BertBackbone on TensorFlow-CPU, converted by tf2onnx), then
run onnxruntime on eight fixed token-id sequences and save the reference outputs.

Nothing is downloaded at run time: the model is built from its config with fixed
seeds, no pretrained weights, no tokenizer. See README.md for the environment.

Writes next to this file:
  model.onnx       the exported graph (opset 17, input token_ids int64 [1, 16],
                   output sequence_output float32 [1, 16, 64])
  inputs.npy       int64 [8, 16]       eight token-id sequences, values in [0, 1000)
  ort_outputs.npy  float32 [8, 16, 64] onnxruntime's sequence_output for each row
"""
import os
import sys

# Quiet, deterministic, and light on a shared 2-core machine.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

import keras  # noqa: E402
import keras_hub  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tf2onnx  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

SEED = 20240601
VOCAB = 1000
HIDDEN = 64
LAYERS = 2
HEADS = 4
INTERMEDIATE = 128
MAX_POS = 64
SEQ = 16
N_SAMPLES = 8
OPSET = 17


def build_model():
    keras.utils.set_random_seed(SEED)
    return keras_hub.models.BertBackbone(
        vocabulary_size=VOCAB,
        num_layers=LAYERS,
        num_heads=HEADS,
        hidden_dim=HIDDEN,
        intermediate_dim=INTERMEDIATE,
        dropout=0.1,  # inactive at inference (training=False)
        max_sequence_length=MAX_POS,
        num_segments=2,
    )


def perturb_weights(model):
    """Make the fresh initialisation look more like a trained checkpoint.

    A freshly built BertBackbone has every bias and LayerNorm beta at exactly 0
    and every gamma at exactly 1; tf2onnx folds those away, so the exported
    graph would have no bias adds and one shared gamma/beta. Draw them instead,
    and scale the query/key kernels by 4 so the attention is not near-uniform.
    """
    rng = np.random.default_rng(SEED + 1)
    for w in model.weights:  # a fixed order: the layers' construction order
        v = w.numpy()
        if w.path.endswith("/gamma"):
            v = 1.0 + 0.1 * rng.standard_normal(v.shape)
        elif w.path.endswith("/beta") or w.path.endswith("/bias"):
            v = 0.1 * rng.standard_normal(v.shape)
        elif w.path.endswith(("/query/kernel", "/key/kernel")):
            v = 4.0 * v
        w.assign(v.astype(np.float32))


def make_inputs():
    rng = np.random.default_rng(SEED)
    ids = rng.integers(0, VOCAB, size=(N_SAMPLES, SEQ), dtype=np.int64)
    # A few fixed, recognisable rows: all zeros, all max id, ascending ids.
    ids[0, :] = 0
    ids[1, :] = VOCAB - 1
    ids[2, :] = np.arange(SEQ, dtype=np.int64) * 61 % VOCAB
    return ids


def canonicalize(model_proto):
    """Give the graph a reproducible byte layout.

    tf2onnx's optimisers walk sets of nodes, so node order and the counters in
    generated names change from run to run although the graph is the same.
    Order the nodes topologically, breaking ties by a structural hash of each
    node (op, attributes, and the hashes of its inputs), then rename every
    node, intermediate value and initializer by position. Graph inputs and
    outputs keep their names.
    """
    import hashlib
    import heapq

    from onnx import helper, numpy_helper

    g = model_proto.graph
    key = {i.name: "in:" + i.name for i in g.input}
    for t in g.initializer:
        arr = numpy_helper.to_array(t)
        key[t.name] = "init:" + hashlib.sha256(
            repr((t.data_type, list(t.dims))).encode() + arr.tobytes()
        ).hexdigest()

    # Nodes in tf2onnx's order are already topological: hash them in one pass.
    node_key = []
    for n in g.node:
        attrs = sorted(
            (a.name, repr(helper.get_attribute_value(a))) for a in n.attribute
        )
        h = hashlib.sha256(
            repr((n.op_type, n.domain, attrs, [key.get(x, "") for x in n.input])).encode()
        ).hexdigest()
        node_key.append(h)
        for k, o in enumerate(n.output):
            key[o] = f"{h}:{k}"

    producer = {o: i for i, n in enumerate(g.node) for o in n.output}
    deps = [
        {producer[x] for x in n.input if x in producer} for n in g.node
    ]
    users = [[] for _ in g.node]
    for i, d in enumerate(deps):
        for j in d:
            users[j].append(i)
    pending = [len(d) for d in deps]
    heap = [(node_key[i], i) for i in range(len(g.node)) if pending[i] == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        _, i = heapq.heappop(heap)
        order.append(i)
        for u in users[i]:
            pending[u] -= 1
            if pending[u] == 0:
                heapq.heappush(heap, (node_key[u], u))
    assert len(order) == len(g.node), "graph has a cycle"

    keep = {i.name for i in g.input} | {o.name for o in g.output}
    rename = {}
    inits = {t.name: t for t in g.initializer}
    init_order = []
    nodes = []
    for pos, i in enumerate(order):
        n = onnx.NodeProto()
        n.CopyFrom(g.node[i])
        for x in n.input:
            if x in inits and x not in rename:
                rename[x] = f"c{len(init_order):03d}"
                init_order.append(x)
        for k, o in enumerate(n.output):
            if o and o not in keep:
                rename[o] = f"t{pos:03d}_{k}"
        n.name = f"n{pos:03d}_{n.op_type}"
        nodes.append(n)
    for n in nodes:
        for k, x in enumerate(n.input):
            if x in rename:
                n.input[k] = rename[x]
        for k, o in enumerate(n.output):
            if o in rename:
                n.output[k] = rename[o]
    new_inits = []
    for name in init_order:
        t = onnx.TensorProto()
        t.CopyFrom(inits[name])
        t.name = rename[name]
        new_inits.append(t)

    del g.node[:]
    g.node.extend(nodes)
    del g.initializer[:]
    g.initializer.extend(new_inits)
    del g.value_info[:]
    g.doc_string = "KerasHub BertBackbone (random init) converted by tf2onnx"
    return model_proto


def main():
    model = build_model()
    perturb_weights(model)

    @tf.function(
        input_signature=[tf.TensorSpec([1, SEQ], tf.int64, name="token_ids")]
    )
    def encode(token_ids):
        ids32 = tf.cast(token_ids, tf.int32)
        out = model(
            {
                "token_ids": ids32,
                "segment_ids": tf.zeros_like(ids32),
                "padding_mask": tf.ones_like(ids32),
            },
            training=False,
        )
        return {"sequence_output": tf.identity(out["sequence_output"], name="sequence_output")}

    onnx_path = os.path.join(HERE, "model.onnx")
    model_proto, _ = tf2onnx.convert.from_function(
        encode,
        input_signature=encode.input_signature,
        opset=OPSET,
        output_path=None,
    )
    model_proto = canonicalize(model_proto)
    onnx.checker.check_model(model_proto)
    onnx.save(model_proto, onnx_path)

    ids = make_inputs()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    out_name = sess.get_outputs()[0].name
    outs = np.stack(
        [sess.run([out_name], {in_name: ids[i : i + 1]})[0][0] for i in range(N_SAMPLES)]
    ).astype(np.float32)

    # Cross-check onnxruntime against TensorFlow itself.
    tf_outs = np.stack(
        [encode(tf.constant(ids[i : i + 1]))["sequence_output"].numpy()[0] for i in range(N_SAMPLES)]
    )
    max_diff = float(np.max(np.abs(outs - tf_outs)))

    np.save(os.path.join(HERE, "inputs.npy"), ids)
    np.save(os.path.join(HERE, "ort_outputs.npy"), outs)

    print(f"model.onnx: {os.path.getsize(onnx_path)} bytes, input {in_name}, output {out_name}")
    print(f"inputs.npy {ids.shape} {ids.dtype}; ort_outputs.npy {outs.shape} {outs.dtype}")
    print(f"max |onnxruntime - tensorflow| = {max_diff:.3e}")
    print(f"output stats: mean {outs.mean():.6f} std {outs.std():.6f}")
    if max_diff > 1e-4:
        print("onnxruntime and TensorFlow disagree by more than 1e-4", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
