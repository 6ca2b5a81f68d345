#!/usr/bin/env python3
"""Print what an ONNX graph holds: checker result, inputs/outputs, op counts,
shape-inference coverage, and every node with its attributes and the inferred
types of its inputs and outputs (small constant inputs shown by value).

usage: inspect_onnx.py [model.onnx]   (defaults to model.onnx next to this file)
"""
import collections
import os
import sys

import onnx
from onnx import helper, numpy_helper, shape_inference

# Ops whose attributes and shapes matter most to a converter; marked with '*'.
FOCUS = {
    "Gather", "Einsum", "Attention", "LayerNormalization", "Softmax", "Where",
    "Cast", "Expand", "Slice", "Unsqueeze", "Shape", "Concat", "Range",
}


def type_str(elem_type, dims):
    return f"{onnx.TensorProto.DataType.Name(elem_type)}{dims}"


def value_info_str(vi):
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return type_str(t.elem_type, "[unranked]")
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
    return type_str(t.elem_type, dims)


def main(path):
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    print(f"{path}: {os.path.getsize(path)} bytes; onnx.checker.check_model(full_check=True): OK")
    print("ir_version", m.ir_version, "opsets",
          [(o.domain or "ai.onnx", o.version) for o in m.opset_import],
          "producer", m.producer_name, m.producer_version)

    g = shape_inference.infer_shapes(m, strict_mode=True, data_prop=True).graph
    shapes = {vi.name: value_info_str(vi) for vi in list(g.input) + list(g.output) + list(g.value_info)}
    inits = {t.name: t for t in g.initializer}
    for t in g.initializer:
        shapes[t.name] = type_str(t.data_type, list(t.dims)) + "(init)"

    print("inputs: ", [(i.name, value_info_str(i)) for i in g.input])
    print("outputs:", [(o.name, value_info_str(o)) for o in g.output])
    n_params = sum(numpy_helper.to_array(t).size for t in g.initializer)
    print(f"nodes {len(g.node)}, initializers {len(g.initializer)}, parameters {n_params}")
    counts = collections.Counter(n.op_type for n in g.node)
    for op, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {op}: {c}")

    missing = [o for n in g.node for o in n.output if o not in shapes]
    symbolic = []
    for vi in list(g.value_info) + list(g.output):
        t = vi.type.tensor_type
        if not t.HasField("shape") or any(not d.HasField("dim_value") for d in t.shape.dim):
            symbolic.append(vi.name)
    print("node outputs with no inferred type/shape:", missing or "none")
    print("values with symbolic or unknown dims:", sorted(set(symbolic)) or "none")

    def const(name):
        if name in inits:
            a = numpy_helper.to_array(inits[name])
            if a.size <= 8:
                return f"={a.tolist()}"
        return ""

    def attrs(n):
        out = {}
        for a in n.attribute:
            v = helper.get_attribute_value(a)
            out[a.name] = v.decode() if isinstance(v, bytes) else v
        return out

    print("\n--- focus ops ---")
    for n in g.node:
        if n.op_type in FOCUS:
            ins = ", ".join(f"{x}:{shapes.get(x, '?')}{const(x)}" for x in n.input)
            print(f"{n.name} {attrs(n)} in: {ins} -> {[shapes.get(x, '?') for x in n.output]}")

    print("\n--- every node ('*' = focus op) ---")
    for n in g.node:
        mark = "*" if n.op_type in FOCUS else " "
        ins = ", ".join(f"{x}:{shapes.get(x, '?')}{const(x)}" for x in n.input)
        outs = ", ".join(f"{x}:{shapes.get(x, '?')}" for x in n.output)
        a = attrs(n)
        print(f"{mark}{n.name} {a if a else ''}\n     in: {ins}\n     out: {outs}")


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "model.onnx"))
