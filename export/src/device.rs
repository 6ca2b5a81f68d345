//! Choosing where training runs: burn's pure-Rust CPU backend (flex), or a GPU
//! through burn's wgpu backend when the `gpu` feature is compiled in and an
//! adapter is found at run time.

use burn::prelude::Device;

use crate::error::{Error, Result};

/// What the user asked for with `--device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    /// A hardware GPU when one is found, else the CPU.
    Auto,
    /// The CPU (burn's flex backend, both cores).
    Cpu,
    /// A hardware GPU, or an error.
    Gpu,
}

/// The device training runs on, with a human-readable description.
#[derive(Debug, Clone)]
pub struct SelectedDevice {
    /// The burn device (without autodiff).
    pub device: Device,
    /// For example `CPU (burn flex)` or `GPU: NVIDIA H100 (Vulkan, wgpu)`.
    pub description: String,
}

impl SelectedDevice {
    fn cpu() -> Self {
        SelectedDevice {
            device: Device::flex(),
            description: "CPU (burn flex backend)".into(),
        }
    }
}

/// Resolves `choice` to a device, probing for a GPU at run time.
pub fn select(choice: DeviceChoice) -> Result<SelectedDevice> {
    match choice {
        DeviceChoice::Cpu => Ok(SelectedDevice::cpu()),
        DeviceChoice::Gpu => gpu::probe(),
        DeviceChoice::Auto => Ok(gpu::probe().unwrap_or_else(|_| SelectedDevice::cpu())),
    }
}

#[cfg(not(feature = "gpu"))]
mod gpu {
    use super::*;

    pub fn probe() -> Result<SelectedDevice> {
        Err(Error::GpuUnavailable {
            reason: "this `tern` was built without GPU support; rebuild with \
                     `cargo build --release -p tern-export --features gpu`"
                .into(),
        })
    }
}

#[cfg(feature = "gpu")]
mod gpu {
    use super::*;

    /// Environment variable that lets a software (CPU) wgpu adapter such as
    /// llvmpipe stand in for a GPU: it exercises the GPU code path on machines
    /// without one, slowly.
    pub const ALLOW_SOFTWARE_ENV: &str = "TERN_ALLOW_SOFTWARE_GPU";

    pub fn probe() -> Result<SelectedDevice> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        let allow_software = std::env::var_os(ALLOW_SOFTWARE_ENV).is_some_and(|v| v == "1");
        let rank = |t: wgpu::DeviceType| match t {
            wgpu::DeviceType::DiscreteGpu => Some(0),
            wgpu::DeviceType::IntegratedGpu => Some(1),
            wgpu::DeviceType::VirtualGpu | wgpu::DeviceType::Other => Some(2),
            wgpu::DeviceType::Cpu if allow_software => Some(3),
            wgpu::DeviceType::Cpu => None,
        };
        let infos: Vec<wgpu::AdapterInfo> = adapters.iter().map(|a| a.get_info()).collect();
        let best = infos
            .iter()
            .filter_map(|i| rank(i.device_type).map(|r| (r, i)))
            .min_by_key(|(r, _)| *r);
        let Some((_, info)) = best else {
            let seen: Vec<String> = infos
                .iter()
                .map(|i| format!("{} ({:?})", i.name, i.device_type))
                .collect();
            let reason = if seen.is_empty() {
                "no wgpu adapter found (is a Vulkan/Metal/DX12 driver installed?)".to_string()
            } else {
                format!(
                    "only software adapters found: {}; set {ALLOW_SOFTWARE_ENV}=1 to use them",
                    seen.join(", ")
                )
            };
            return Err(Error::GpuUnavailable { reason });
        };
        let device = Device::wgpu(Default::default());
        Ok(SelectedDevice {
            device,
            description: format!(
                "GPU: {} ({:?}, {:?}, wgpu)",
                info.name, info.device_type, info.backend
            ),
        })
    }
}
