//! A small builder for ONNX graphs on top of the protobuf types that tract-onnx
//! exposes (`tract_onnx::pb`). It only assembles messages; it does no shape
//! inference and no validation beyond keeping names unique.

use std::collections::HashSet;

use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto::AttributeType,
    tensor_proto::DataType, tensor_shape_proto, type_proto,
};

/// The ONNX operator set Tern writes.
pub const OPSET: i64 = 17;
/// The ONNX IR version that goes with [`OPSET`].
pub const IR_VERSION: i64 = 8;

/// One dimension of a graph input or output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A named symbolic size, such as the batch.
    Symbol(&'static str),
}

/// Builds a [`GraphProto`] node by node.
#[derive(Debug)]
pub struct GraphBuilder {
    graph: GraphProto,
    names: HashSet<String>,
}

impl GraphBuilder {
    /// An empty graph called `name`.
    pub fn new(name: &str) -> Self {
        let graph = GraphProto {
            name: name.to_owned(),
            ..Default::default()
        };
        GraphBuilder {
            graph,
            names: HashSet::new(),
        }
    }

    fn claim(&mut self, name: &str) -> String {
        assert!(
            self.names.insert(name.to_owned()),
            "ONNX name {name:?} used twice"
        );
        name.to_owned()
    }

    /// Declares a float32 graph input and returns its name.
    pub fn input(&mut self, name: &str, dims: &[Dim]) -> String {
        let name = self.claim(name);
        self.graph.input.push(value_info(&name, dims));
        name
    }

    /// Adds a graph input of ONNX element type `elem_type` (e.g. 7 = int64 token ids).
    pub fn input_typed(&mut self, name: &str, dims: &[Dim], elem_type: i32) -> String {
        let name = self.claim(name);
        let mut info = value_info(&name, dims);
        if let Some(type_proto::Value::TensorType(t)) =
            info.r#type.as_mut().and_then(|t| t.value.as_mut())
        {
            t.elem_type = elem_type;
        }
        self.graph.input.push(info);
        name
    }

    /// Declares `name` (an existing value) as a float32 graph output.
    pub fn output(&mut self, name: &str, dims: &[Dim]) {
        self.graph.output.push(value_info(name, dims));
    }

    /// Adds a float32 initializer and returns its name.
    pub fn weight(&mut self, name: &str, dims: &[i64], values: Vec<f32>) -> String {
        debug_assert_eq!(
            dims.iter().product::<i64>() as usize,
            values.len(),
            "{name}"
        );
        let name = self.claim(name);
        self.graph.initializer.push(TensorProto {
            name: name.clone(),
            dims: dims.to_vec(),
            data_type: DataType::Float as i32,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    /// Adds an int64 initializer (shapes, axes) and returns its name.
    pub fn ints(&mut self, name: &str, values: &[i64]) -> String {
        let name = self.claim(name);
        self.graph.initializer.push(TensorProto {
            name: name.clone(),
            dims: vec![values.len() as i64],
            data_type: DataType::Int64 as i32,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    /// Adds a scalar float32 initializer and returns its name.
    pub fn scalar(&mut self, name: &str, value: f32) -> String {
        self.weight(name, &[], vec![value])
    }

    /// Adds a node with one output named like the node, and returns that name.
    pub fn node(
        &mut self,
        op_type: &str,
        name: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> String {
        let out = self.claim(name);
        self.node_multi(op_type, name, inputs, &[&out], attrs);
        out
    }

    /// Adds a node with explicit output names (`""` skips an optional output).
    pub fn node_multi(
        &mut self,
        op_type: &str,
        name: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) {
        for out in outputs.iter().filter(|o| !o.is_empty() && **o != name) {
            self.claim(out);
        }
        self.graph.node.push(NodeProto {
            name: name.to_owned(),
            op_type: op_type.to_owned(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute: attrs,
            ..Default::default()
        });
    }

    /// Wraps the graph in a model with Tern's opset and the given metadata.
    pub fn into_model(self, doc: &str, metadata: &[(String, String)]) -> ModelProto {
        ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            producer_name: "tern".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: doc.into(),
            graph: Some(self.graph),
            metadata_props: metadata
                .iter()
                .map(|(k, v)| StringStringEntryProto {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            ..Default::default()
        }
    }
}

fn value_info(name: &str, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            denotation: String::new(),
            value: Some(match d {
                Dim::Fixed(n) => tensor_shape_proto::dimension::Value::DimValue(*n),
                Dim::Symbol(s) => tensor_shape_proto::dimension::Value::DimParam((*s).to_owned()),
            }),
        })
        .collect();
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(TypeProto {
            denotation: String::new(),
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
        }),
        doc_string: String::new(),
    }
}

/// An integer attribute.
pub fn attr_int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

/// An integer-list attribute.
pub fn attr_ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

/// A float attribute.
pub fn attr_float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f: value,
        ..Default::default()
    }
}

/// A string-list attribute.
pub fn attr_strings(name: &str, values: &[&str]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Strings as i32,
        strings: values.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}
