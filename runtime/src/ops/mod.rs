//! The ops: one module per opcode, each holding its parameter words, its
//! load-time check and its run functions, and exporting one [`Registration`]
//! per kernel variant (`ANY` always; `INT8`, `INT8_REFERENCE`, `FLOAT` where an
//! op has those kernels). [`ALL`] registers every op with every kernel; a
//! firmware registers only its model's ops in its own [`OpResolver`] (see
//! [`resolver_source`] for generating one), and the linker drops the rest.
//!
//! Adding an op: its module here (parameters, check, run), one line in
//! [`ALL`], its opcode in [`crate::format`], and its importer in `tern-export`.
//! The kernels themselves live in [`crate::kernels`] and know nothing of the
//! file format.

/// `(path, registration)` pairs of the listed registrations.
macro_rules! variants {
    ($($module:ident :: $name:ident),* $(,)?) => {
        [$((concat!(stringify!($module), "::", stringify!($name)), $module::$name)),*]
    };
}

mod check;
mod codegen;
mod params;
mod registration;
mod run;
mod weighted;

pub mod activation;
pub mod arg_max;
pub mod attention;
pub mod avg_pool2d;
pub mod binary;
pub mod cast;
pub mod compare;
pub mod concat;
pub mod conv2d;
pub mod conv_transpose2d;
pub mod copy;
pub mod dequantize;
pub mod expand;
pub mod fully_connected;
pub mod gather;
pub mod gru;
pub mod layer_norm;
pub mod lrn;
pub mod lstm;
pub mod lut;
pub mod matmul;
pub mod max_pool2d;
pub mod pad;
pub mod quantize;
pub mod recurrent;
pub mod reduce;
pub mod resize;
pub mod rnn;
pub mod slice;
pub mod softmax;
pub mod transpose;
pub mod where_select;

pub use activation::{decode_activation, encode_activation};
pub use arg_max::ArgMaxParams;
pub use attention::AttentionParams;
pub use binary::{BinaryF32Params, decode_binary_s8, encode_binary_s8};
pub use check::{Check, OpCheck};
pub use codegen::{Language, minimal_registrations, minimal_resolver, resolver_source};
pub use compare::{compare_op, compare_op_code};
pub use conv2d::ConvParams;
pub use fully_connected::FullyConnectedParams;
pub use lrn::LrnParams;
pub use max_pool2d::PoolParams;
pub use pad::pad_mode;
pub use params::{ClampWords, Words};
pub use recurrent::RecurrentParams;
pub use reduce::{reduce_op, reduce_op_code};
pub use registration::{
    OpResolver, Registration, any_dtype, float_input, int8_input, int8_output, not_int8_output,
};
pub use resize::ResizeParams;
pub use run::OpRun;

pub(crate) use run::tensor_of;

/// Every op with every kernel: the host's resolver, and what
/// [`crate::Model::from_bytes`] loads with. One line per op.
pub static ALL: OpResolver = OpResolver::new()
    .with(conv2d::ANY)
    .with(conv_transpose2d::ANY)
    .with(fully_connected::ANY)
    .with(max_pool2d::ANY)
    .with(avg_pool2d::ANY)
    .with(activation::ANY)
    .with(lut::ANY)
    .with(binary::ANY)
    .with(concat::ANY)
    .with(copy::ANY)
    .with(transpose::ANY)
    .with(pad::ANY)
    .with(resize::ANY)
    .with(softmax::ANY)
    .with(lrn::ANY)
    .with(quantize::ANY)
    .with(dequantize::ANY)
    .with(matmul::ANY)
    .with(layer_norm::ANY)
    .with(reduce::ANY)
    .with(slice::ANY)
    .with(gather::ANY)
    .with(where_select::ANY)
    .with(compare::ANY)
    .with(cast::ANY)
    .with(expand::ANY)
    .with(lstm::ANY)
    .with(gru::ANY)
    .with(rnn::ANY)
    .with(attention::ANY)
    .with(arg_max::ANY);

/// Every registration of every op, with its path, for choosing and printing a
/// resolver ([`resolver_source`]): per op, the specific variants first.
pub static VARIANTS: &[(&str, Registration)] = &variants![
    conv2d::INT8,
    conv2d::INT8_REFERENCE,
    conv2d::FLOAT,
    conv2d::ANY,
    conv_transpose2d::INT8,
    conv_transpose2d::FLOAT,
    conv_transpose2d::ANY,
    fully_connected::INT8,
    fully_connected::INT8_REFERENCE,
    fully_connected::FLOAT,
    fully_connected::ANY,
    max_pool2d::INT8,
    max_pool2d::FLOAT,
    max_pool2d::ANY,
    avg_pool2d::INT8,
    avg_pool2d::FLOAT,
    avg_pool2d::ANY,
    activation::ANY,
    lut::ANY,
    binary::INT8,
    binary::FLOAT,
    binary::ANY,
    concat::ANY,
    copy::ANY,
    transpose::ANY,
    pad::ANY,
    resize::INT8,
    resize::FLOAT,
    resize::ANY,
    softmax::INT8,
    softmax::FLOAT,
    softmax::ANY,
    lrn::ANY,
    quantize::ANY,
    dequantize::ANY,
    matmul::ANY,
    layer_norm::ANY,
    reduce::ANY,
    slice::ANY,
    gather::ANY,
    where_select::ANY,
    compare::ANY,
    cast::ANY,
    expand::ANY,
    lstm::INT8,
    lstm::FLOAT,
    lstm::ANY,
    gru::INT8,
    gru::FLOAT,
    gru::ANY,
    rnn::INT8,
    rnn::FLOAT,
    rnn::ANY,
    attention::ANY,
    arg_max::ANY,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Opcode;

    #[test]
    fn every_opcode_is_registered_in_all() {
        for &opcode in Opcode::ALL {
            let registration = ALL.get(opcode).expect("registered");
            assert_eq!(registration.opcode, opcode);
            assert_eq!(registration.variant, "any");
        }
        assert_eq!(ALL.len(), Opcode::ALL.len());
    }

    #[test]
    fn variants_list_every_op_and_name_their_module() {
        for &opcode in Opcode::ALL {
            assert!(
                VARIANTS
                    .iter()
                    .any(|(_, r)| r.opcode == opcode && r.variant == "any")
            );
        }
        for (path, registration) in VARIANTS {
            let suffix = match registration.variant {
                "any" => "::ANY",
                "int8" => "::INT8",
                "int8-reference" => "::INT8_REFERENCE",
                "float" => "::FLOAT",
                other => panic!("unknown variant {other}"),
            };
            assert!(path.ends_with(suffix), "{path} is {}", registration.variant);
        }
    }

    #[test]
    fn with_replaces_the_variant_of_an_op() {
        let resolver = OpResolver::new()
            .with(conv2d::ANY)
            .with(conv2d::INT8)
            .with(copy::ANY);
        assert_eq!(resolver.len(), 2);
        assert_eq!(resolver.get(Opcode::Conv2d).unwrap().variant, "int8");
        assert!(resolver.get(Opcode::FullyConnected).is_none());
    }
}
