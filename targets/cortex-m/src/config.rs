//! Build-time constants, written by `build.rs` from the environment
//! (`TERN_FW_*`), the board table and the model's header.

include!(concat!(env!("OUT_DIR"), "/config.rs"));
