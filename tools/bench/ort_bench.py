"""ONNX Runtime's side of the side-by-side benchmark: fp32 and static QDQ int8
(per-channel weights, calibrated on the same samples Tern calibrates on), one thread,
the model's input shape as given. Prints one JSON object. Driven by `cargo xtask bench`.

usage: ort_bench.py MODEL INPUT_NAME SAMPLES WORK [--runs N] [--seconds S]

SAMPLES  folder with calib/*.npy and test/*.npy (from inputs.py)
WORK     folder for the quantized model

Timing is per `session.run` from Python, median over the runs, inputs prepared
beforehand. The Python call's own cost is measured the same way on a one-op model
(Identity on the same input) and reported as `overhead_ms`, so that a reader can
judge the ratios on small models.
"""

import argparse
import glob
import json
import os
import sys
import time

import numpy as np
import onnx
import onnx.version_converter
import onnxruntime as ort
from onnx import TensorProto, helper
from onnxruntime import quantization as q


def load(folder):
    return [np.load(p) for p in sorted(glob.glob(os.path.join(folder, "*.npy")))]


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def median_ms(run, feeds, runs, seconds):
    for feed in feeds[:3]:
        run(feed)
    times = []
    deadline = time.perf_counter() + seconds
    i = 0
    while len(times) < runs or (time.perf_counter() < deadline and len(times) < 50 * runs):
        feed = feeds[i % len(feeds)]
        start = time.perf_counter()
        run(feed)
        times.append(time.perf_counter() - start)
        i += 1
    return 1e3 * float(np.median(times))


def outputs(sess, feeds):
    return np.concatenate([np.concatenate([o.ravel() for o in sess.run(None, f)]) for f in feeds])


def cosine(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


class Reader(q.CalibrationDataReader):
    def __init__(self, name, samples):
        self.feeds = iter([{name: s} for s in samples])

    def get_next(self):
        return next(self.feeds, None)


def identity_model(path, shape):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("input_name")
    parser.add_argument("samples")
    parser.add_argument("work")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    calib = load(os.path.join(args.samples, "calib"))
    test = load(os.path.join(args.samples, "test"))
    feeds = [{args.input_name: t} for t in test]
    result = {"ort_version": ort.__version__}

    fp32 = session(args.model)
    result["fp32_ms"] = median_ms(lambda f: fp32.run(None, f), feeds, args.runs, args.seconds)
    reference = outputs(fp32, feeds)

    # Static QDQ int8 as ORT documents it: pre-processing (shape inference and
    # graph clean-up) first, then per-channel QDQ with MinMax calibration.
    # Per-channel QDQ needs opset 13 (DequantizeLinear's axis): older models are
    # brought to 13 by onnx's version converter first.
    source = args.model
    model = onnx.load(source)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=13)
    if opset < 13:
        source = os.path.join(args.work, "ort-opset13.onnx")
        onnx.save(onnx.version_converter.convert_version(model, 13), source)
    prepared = os.path.join(args.work, "ort-prepared.onnx")
    quantized = os.path.join(args.work, "ort-int8.onnx")
    try:
        q.shape_inference.quant_pre_process(source, prepared, skip_symbolic_shape=True)
    except Exception as e:  # some exported graphs defeat the pre-processing; quantize as is
        print(f"ort_bench: quant_pre_process failed ({e}); quantizing the model as is", file=sys.stderr)
        prepared = source
    q.quantize_static(
        prepared,
        quantized,
        Reader(args.input_name, calib),
        quant_format=q.QuantFormat.QDQ,
        per_channel=True,
        activation_type=q.QuantType.QUInt8,
        weight_type=q.QuantType.QInt8,
        calibrate_method=q.CalibrationMethod.MinMax,
    )
    int8 = session(quantized)
    result["int8_ms"] = median_ms(lambda f: int8.run(None, f), feeds, args.runs, args.seconds)
    result["int8_cosine"] = cosine(outputs(int8, feeds), reference)

    identity = os.path.join(args.work, "identity.onnx")
    identity_model(identity, list(test[0].shape))
    ident = session(identity)
    result["overhead_ms"] = median_ms(lambda f: ident.run(None, {"x": f[args.input_name]}), feeds, args.runs, 0.5)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
