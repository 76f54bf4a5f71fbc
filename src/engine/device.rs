//! Which device the model runs on. `UPWARD_DEVICE` chooses: `cpu`, `cuda`, `metal`, or
//! `auto` (also when unset): the first GPU of a `cuda` or `metal` build, else the CPU.

use candle_core::Device;
use std::env::VarError;

/// The environment variable that picks the device.
pub(crate) const DEVICE_ENV: &str = "UPWARD_DEVICE";

/// The device `UPWARD_DEVICE` names. A GPU named explicitly must work: when it cannot be
/// used, the answer is an error that says why, never a silent run on the CPU.
pub(crate) fn select() -> Result<Device, String> {
    let name = match std::env::var(DEVICE_ENV) {
        Ok(v) => v,
        Err(VarError::NotPresent) => String::new(),
        Err(VarError::NotUnicode(v)) => return Err(unknown(&v.to_string_lossy())),
    };
    match name.trim().to_ascii_lowercase().as_str() {
        "" | "auto" => Ok(auto()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda(),
        "metal" => metal(),
        _ => Err(unknown(&name)),
    }
}

fn unknown(name: &str) -> String {
    format!("{DEVICE_ENV}={name:?} is not a device: use auto, cpu, cuda or metal")
}

/// The first CUDA or Metal device when built with that feature and present, else the CPU.
fn auto() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(d) = Device::new_cuda(0) {
        return d;
    }
    #[cfg(feature = "metal")]
    if let Ok(d) = Device::new_metal(0) {
        return d;
    }
    Device::Cpu
}

#[cfg(feature = "cuda")]
fn cuda() -> Result<Device, String> {
    Device::new_cuda(0).map_err(|e| format!("{DEVICE_ENV}=cuda: no usable CUDA device ({e})"))
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<Device, String> {
    Err(without("cuda"))
}

#[cfg(feature = "metal")]
fn metal() -> Result<Device, String> {
    Device::new_metal(0).map_err(|e| format!("{DEVICE_ENV}=metal: no usable Metal device ({e})"))
}

#[cfg(not(feature = "metal"))]
fn metal() -> Result<Device, String> {
    Err(without("metal"))
}

#[cfg(any(not(feature = "cuda"), not(feature = "metal")))]
fn without(feature: &str) -> String {
    format!(
        "{DEVICE_ENV}={feature}: this upward was built without {feature} \
         (build it with `cargo build --release --features {feature}`)"
    )
}
