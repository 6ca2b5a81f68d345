//! The op resolver from C: `TernOpResolver` storage, one `tern_op_*`
//! registration per op and kernel variant (a C firmware names only those its
//! model needs, so the linker drops the other kernels), and loading a model
//! with it (`tern_model_init_with_resolver`). `tern inspect --resolver c
//! MODEL` writes the registration function for a model.
#![allow(non_upper_case_globals)]

use tern_runtime::ops::{self, OpResolver, Registration};

use crate::{Outcome, TernStatus, fail, guard, non_null, usable};

/// One op's kernel variant, to add to a `TernOpResolver` (opaque; use the
/// `tern_op_*` constants).
pub struct TernRegistration(Registration);

/// Storage for an op resolver. Opaque: allocate it (a `static` or a global: it
/// must outlive every model loaded with it), initialize it with
/// `tern_op_resolver_init`, add registrations with `tern_op_resolver_add`, then
/// load models with `tern_model_init_with_resolver`. Never copy or move it after
/// a model uses it.
#[repr(C, align(16))]
pub struct TernOpResolver {
    opaque: [u64; 256],
}

const RESOLVER_MAGIC: u64 = 0x5445_524e_4f50_5352;

#[repr(C)]
pub(crate) struct ResolverSlot {
    magic: u64,
    pub(crate) resolver: OpResolver,
}

const _: () = assert!(size_of::<ResolverSlot>() <= size_of::<TernOpResolver>());
const _: () = assert!(align_of::<ResolverSlot>() <= align_of::<TernOpResolver>());

/// Initializes `resolver` with no op.
///
/// # Safety
/// `resolver` is NULL or points to writable `TernOpResolver` storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_op_resolver_init(resolver: *mut TernOpResolver) -> TernStatus {
    guard(|| {
        usable(resolver, "resolver")?;
        // SAFETY: non-null, aligned and writable (checked, caller); the slot fits
        // (const asserts); the old content is caller storage, not dropped.
        unsafe {
            resolver.cast::<ResolverSlot>().write(ResolverSlot {
                magic: RESOLVER_MAGIC,
                resolver: OpResolver::new(),
            })
        };
        Ok(())
    })
}

/// Adds `registration` (a `tern_op_*` constant) to `resolver`, replacing another
/// variant of the same op. Do not add to a resolver a loaded model uses.
///
/// # Safety
/// `resolver` is NULL or points to `TernOpResolver` storage; `registration` is
/// NULL or one of the `tern_op_*` constants.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_op_resolver_add(
    resolver: *mut TernOpResolver,
    registration: *const TernRegistration,
) -> TernStatus {
    guard(|| {
        non_null(registration, "registration")?;
        // SAFETY: checked non-null; the caller passes one of the constants.
        let registration = unsafe { &*registration }.0;
        // SAFETY: `resolver` is checked by `resolver_slot`.
        let slot = unsafe { resolver_slot(resolver) }?;
        slot.resolver = slot.resolver.with(registration);
        Ok(())
    })
}

/// The initialized resolver behind `resolver`.
///
/// # Safety
/// `resolver` is NULL or points to `TernOpResolver` storage.
pub(crate) unsafe fn resolver_slot<'x>(
    resolver: *mut TernOpResolver,
) -> Outcome<&'x mut ResolverSlot> {
    usable(resolver, "resolver")?;
    // SAFETY: non-null and aligned (checked); the storage is at least a slot's size.
    let slot = unsafe { &mut *resolver.cast::<ResolverSlot>() };
    if slot.magic != RESOLVER_MAGIC {
        return Err(fail(
            TernStatus::NotInitialized,
            format_args!("the op resolver is not initialized (tern_op_resolver_init)"),
        ));
    }
    Ok(slot)
}

/// `conv2d::INT8`.
#[unsafe(no_mangle)]
pub static tern_op_conv2d_int8: TernRegistration = TernRegistration(ops::conv2d::INT8);

/// `conv2d::INT8_REFERENCE`.
#[unsafe(no_mangle)]
pub static tern_op_conv2d_int8_reference: TernRegistration =
    TernRegistration(ops::conv2d::INT8_REFERENCE);

/// `conv2d::FLOAT`.
#[unsafe(no_mangle)]
pub static tern_op_conv2d_float: TernRegistration = TernRegistration(ops::conv2d::FLOAT);

/// `conv2d::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_conv2d_any: TernRegistration = TernRegistration(ops::conv2d::ANY);

/// `conv_transpose2d::INT8`.
#[unsafe(no_mangle)]
pub static tern_op_conv_transpose2d_int8: TernRegistration =
    TernRegistration(ops::conv_transpose2d::INT8);

/// `conv_transpose2d::FLOAT`.
#[unsafe(no_mangle)]
pub static tern_op_conv_transpose2d_float: TernRegistration =
    TernRegistration(ops::conv_transpose2d::FLOAT);

/// `conv_transpose2d::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_conv_transpose2d_any: TernRegistration =
    TernRegistration(ops::conv_transpose2d::ANY);

/// `fully_connected::INT8`.
#[unsafe(no_mangle)]
pub static tern_op_fully_connected_int8: TernRegistration =
    TernRegistration(ops::fully_connected::INT8);

/// `fully_connected::INT8_REFERENCE`.
#[unsafe(no_mangle)]
pub static tern_op_fully_connected_int8_reference: TernRegistration =
    TernRegistration(ops::fully_connected::INT8_REFERENCE);

/// `fully_connected::FLOAT`.
#[unsafe(no_mangle)]
pub static tern_op_fully_connected_float: TernRegistration =
    TernRegistration(ops::fully_connected::FLOAT);

/// `fully_connected::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_fully_connected_any: TernRegistration =
    TernRegistration(ops::fully_connected::ANY);

/// `max_pool2d::INT8`.
#[unsafe(no_mangle)]
pub static tern_op_max_pool2d_int8: TernRegistration = TernRegistration(ops::max_pool2d::INT8);

/// `max_pool2d::FLOAT`.
#[unsafe(no_mangle)]
pub static tern_op_max_pool2d_float: TernRegistration = TernRegistration(ops::max_pool2d::FLOAT);

/// `max_pool2d::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_max_pool2d_any: TernRegistration = TernRegistration(ops::max_pool2d::ANY);

/// `avg_pool2d::INT8`.
#[unsafe(no_mangle)]
pub static tern_op_avg_pool2d_int8: TernRegistration = TernRegistration(ops::avg_pool2d::INT8);

/// `avg_pool2d::FLOAT`.
#[unsafe(no_mangle)]
pub static tern_op_avg_pool2d_float: TernRegistration = TernRegistration(ops::avg_pool2d::FLOAT);

/// `avg_pool2d::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_avg_pool2d_any: TernRegistration = TernRegistration(ops::avg_pool2d::ANY);

/// `activation::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_activation_any: TernRegistration = TernRegistration(ops::activation::ANY);

/// `lut::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_lut_any: TernRegistration = TernRegistration(ops::lut::ANY);

/// `binary::INT8`.
#[unsafe(no_mangle)]
pub static tern_op_binary_int8: TernRegistration = TernRegistration(ops::binary::INT8);

/// `binary::FLOAT`.
#[unsafe(no_mangle)]
pub static tern_op_binary_float: TernRegistration = TernRegistration(ops::binary::FLOAT);

/// `binary::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_binary_any: TernRegistration = TernRegistration(ops::binary::ANY);

/// `concat::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_concat_any: TernRegistration = TernRegistration(ops::concat::ANY);

/// `copy::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_copy_any: TernRegistration = TernRegistration(ops::copy::ANY);

/// `transpose::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_transpose_any: TernRegistration = TernRegistration(ops::transpose::ANY);

/// `pad::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_pad_any: TernRegistration = TernRegistration(ops::pad::ANY);

/// `resize::INT8`.
#[unsafe(no_mangle)]
pub static tern_op_resize_int8: TernRegistration = TernRegistration(ops::resize::INT8);

/// `resize::FLOAT`.
#[unsafe(no_mangle)]
pub static tern_op_resize_float: TernRegistration = TernRegistration(ops::resize::FLOAT);

/// `resize::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_resize_any: TernRegistration = TernRegistration(ops::resize::ANY);

/// `softmax::INT8`.
#[unsafe(no_mangle)]
pub static tern_op_softmax_int8: TernRegistration = TernRegistration(ops::softmax::INT8);

/// `softmax::FLOAT`.
#[unsafe(no_mangle)]
pub static tern_op_softmax_float: TernRegistration = TernRegistration(ops::softmax::FLOAT);

/// `softmax::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_softmax_any: TernRegistration = TernRegistration(ops::softmax::ANY);

/// `lrn::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_lrn_any: TernRegistration = TernRegistration(ops::lrn::ANY);

/// `quantize::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_quantize_any: TernRegistration = TernRegistration(ops::quantize::ANY);

/// `dequantize::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_dequantize_any: TernRegistration = TernRegistration(ops::dequantize::ANY);

/// `matmul::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_matmul_any: TernRegistration = TernRegistration(ops::matmul::ANY);

/// `layer_norm::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_layer_norm_any: TernRegistration = TernRegistration(ops::layer_norm::ANY);

/// `reduce::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_reduce_any: TernRegistration = TernRegistration(ops::reduce::ANY);

/// `slice::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_slice_any: TernRegistration = TernRegistration(ops::slice::ANY);

/// `gather::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_gather_any: TernRegistration = TernRegistration(ops::gather::ANY);

/// `where_select::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_where_select_any: TernRegistration = TernRegistration(ops::where_select::ANY);

/// `compare::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_compare_any: TernRegistration = TernRegistration(ops::compare::ANY);

/// `cast::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_cast_any: TernRegistration = TernRegistration(ops::cast::ANY);

/// `expand::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_expand_any: TernRegistration = TernRegistration(ops::expand::ANY);

/// `lstm::INT8`.
#[unsafe(no_mangle)]
pub static tern_op_lstm_int8: TernRegistration = TernRegistration(ops::lstm::INT8);

/// `lstm::FLOAT`.
#[unsafe(no_mangle)]
pub static tern_op_lstm_float: TernRegistration = TernRegistration(ops::lstm::FLOAT);

/// `lstm::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_lstm_any: TernRegistration = TernRegistration(ops::lstm::ANY);

/// `gru::INT8`.
#[unsafe(no_mangle)]
pub static tern_op_gru_int8: TernRegistration = TernRegistration(ops::gru::INT8);

/// `gru::FLOAT`.
#[unsafe(no_mangle)]
pub static tern_op_gru_float: TernRegistration = TernRegistration(ops::gru::FLOAT);

/// `gru::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_gru_any: TernRegistration = TernRegistration(ops::gru::ANY);

/// `rnn::INT8`.
#[unsafe(no_mangle)]
pub static tern_op_rnn_int8: TernRegistration = TernRegistration(ops::rnn::INT8);

/// `rnn::FLOAT`.
#[unsafe(no_mangle)]
pub static tern_op_rnn_float: TernRegistration = TernRegistration(ops::rnn::FLOAT);

/// `rnn::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_rnn_any: TernRegistration = TernRegistration(ops::rnn::ANY);

/// `attention::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_attention_any: TernRegistration = TernRegistration(ops::attention::ANY);

/// `arg_max::ANY`.
#[unsafe(no_mangle)]
pub static tern_op_arg_max_any: TernRegistration = TernRegistration(ops::arg_max::ANY);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every registration of the runtime has its constant, named after it.
    #[test]
    fn every_variant_has_its_constant() {
        let constants: &[(&str, &TernRegistration)] = &[
            ("conv2d::INT8", &tern_op_conv2d_int8),
            ("conv2d::INT8_REFERENCE", &tern_op_conv2d_int8_reference),
            ("conv2d::FLOAT", &tern_op_conv2d_float),
            ("conv2d::ANY", &tern_op_conv2d_any),
            ("conv_transpose2d::INT8", &tern_op_conv_transpose2d_int8),
            ("conv_transpose2d::FLOAT", &tern_op_conv_transpose2d_float),
            ("conv_transpose2d::ANY", &tern_op_conv_transpose2d_any),
            ("fully_connected::INT8", &tern_op_fully_connected_int8),
            (
                "fully_connected::INT8_REFERENCE",
                &tern_op_fully_connected_int8_reference,
            ),
            ("fully_connected::FLOAT", &tern_op_fully_connected_float),
            ("fully_connected::ANY", &tern_op_fully_connected_any),
            ("max_pool2d::INT8", &tern_op_max_pool2d_int8),
            ("max_pool2d::FLOAT", &tern_op_max_pool2d_float),
            ("max_pool2d::ANY", &tern_op_max_pool2d_any),
            ("avg_pool2d::INT8", &tern_op_avg_pool2d_int8),
            ("avg_pool2d::FLOAT", &tern_op_avg_pool2d_float),
            ("avg_pool2d::ANY", &tern_op_avg_pool2d_any),
            ("activation::ANY", &tern_op_activation_any),
            ("lut::ANY", &tern_op_lut_any),
            ("binary::INT8", &tern_op_binary_int8),
            ("binary::FLOAT", &tern_op_binary_float),
            ("binary::ANY", &tern_op_binary_any),
            ("concat::ANY", &tern_op_concat_any),
            ("copy::ANY", &tern_op_copy_any),
            ("transpose::ANY", &tern_op_transpose_any),
            ("pad::ANY", &tern_op_pad_any),
            ("resize::INT8", &tern_op_resize_int8),
            ("resize::FLOAT", &tern_op_resize_float),
            ("resize::ANY", &tern_op_resize_any),
            ("softmax::INT8", &tern_op_softmax_int8),
            ("softmax::FLOAT", &tern_op_softmax_float),
            ("softmax::ANY", &tern_op_softmax_any),
            ("lrn::ANY", &tern_op_lrn_any),
            ("quantize::ANY", &tern_op_quantize_any),
            ("dequantize::ANY", &tern_op_dequantize_any),
            ("matmul::ANY", &tern_op_matmul_any),
            ("layer_norm::ANY", &tern_op_layer_norm_any),
            ("reduce::ANY", &tern_op_reduce_any),
            ("slice::ANY", &tern_op_slice_any),
            ("gather::ANY", &tern_op_gather_any),
            ("where_select::ANY", &tern_op_where_select_any),
            ("compare::ANY", &tern_op_compare_any),
            ("cast::ANY", &tern_op_cast_any),
            ("expand::ANY", &tern_op_expand_any),
            ("lstm::INT8", &tern_op_lstm_int8),
            ("lstm::FLOAT", &tern_op_lstm_float),
            ("lstm::ANY", &tern_op_lstm_any),
            ("gru::INT8", &tern_op_gru_int8),
            ("gru::FLOAT", &tern_op_gru_float),
            ("gru::ANY", &tern_op_gru_any),
            ("rnn::INT8", &tern_op_rnn_int8),
            ("rnn::FLOAT", &tern_op_rnn_float),
            ("rnn::ANY", &tern_op_rnn_any),
            ("attention::ANY", &tern_op_attention_any),
            ("arg_max::ANY", &tern_op_arg_max_any),
        ];
        assert_eq!(constants.len(), ops::VARIANTS.len());
        for ((path, constant), (want_path, want)) in constants.iter().zip(ops::VARIANTS) {
            assert_eq!(path, want_path);
            assert_eq!(constant.0.opcode, want.opcode);
            assert_eq!(constant.0.variant, want.variant);
        }
    }
}
