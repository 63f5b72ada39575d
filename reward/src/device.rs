//! Choosing where the reward model runs: CUDA when built with the `cuda` feature and a GPU
//! answers, otherwise the CPU, always with a reason a person can read.

use candle_core::Device;

/// What the user asked for (`--device` in the trainer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// CUDA if available, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

impl std::str::FromStr for DeviceChoice {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, DeviceError> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda),
            _ => Err(DeviceError::Unknown(s.to_string())),
        }
    }
}

/// Why the requested device cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device `{0}`; expected auto, cpu or cuda")]
    Unknown(String),
    #[error(
        "CUDA was requested but this build has no CUDA support; rebuild with `--features cuda`"
    )]
    NotBuilt,
    #[error("CUDA was requested but no GPU could be used: {0}")]
    Unavailable(String),
}

/// The device chosen, and why.
#[derive(Debug, Clone)]
pub struct SelectedDevice {
    pub device: Device,
    /// `"cpu"` or `"cuda:0"`.
    pub name: String,
    pub reason: String,
}

/// Picks the device for `choice`; `Auto` never fails. The reason is logged.
pub fn select(choice: DeviceChoice) -> Result<SelectedDevice, DeviceError> {
    let cpu = |reason: String| SelectedDevice {
        device: Device::Cpu,
        name: "cpu".into(),
        reason,
    };
    let selected = match choice {
        DeviceChoice::Cpu => cpu("the CPU was requested".into()),
        DeviceChoice::Cuda => open_cuda()?,
        DeviceChoice::Auto => match open_cuda() {
            Ok(cuda) => cuda,
            Err(DeviceError::NotBuilt) => cpu("built without the `cuda` feature".into()),
            Err(DeviceError::Unavailable(why)) => cpu(format!("no GPU could be used: {why}")),
            Err(error) => cpu(format!("{error}; using the CPU")),
        },
    };
    log::info!(
        "reward model device: {} ({})",
        selected.name,
        selected.reason
    );
    Ok(selected)
}

#[cfg(feature = "cuda")]
fn open_cuda() -> Result<SelectedDevice, DeviceError> {
    // NOTE: candle 0.11 links libcuda.so.1 and the CUDA libraries at build time, so a cuda build
    // starts only where they exist; there, no usable GPU is an error (CUDA_ERROR_NO_DEVICE, or
    // CUDA_ERROR_STUB_LIBRARY from a stub driver). The attempt stays isolated against a panic.
    match std::panic::catch_unwind(|| Device::new_cuda(0)) {
        Ok(Ok(device)) => Ok(SelectedDevice {
            device,
            name: "cuda:0".into(),
            reason: "CUDA GPU 0 is available".into(),
        }),
        Ok(Err(error)) => Err(DeviceError::Unavailable(error.to_string())),
        Err(_) => Err(DeviceError::Unavailable(
            "the CUDA driver library could not be loaded".into(),
        )),
    }
}

#[cfg(not(feature = "cuda"))]
fn open_cuda() -> Result<SelectedDevice, DeviceError> {
    Err(DeviceError::NotBuilt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_always_finds_a_device_and_says_why() {
        let selected = select(DeviceChoice::Auto).unwrap();
        assert!(!selected.reason.is_empty());
        if !cfg!(feature = "cuda") {
            assert_eq!(selected.name, "cpu");
            assert_eq!(selected.reason, "built without the `cuda` feature");
            assert_eq!(
                select(DeviceChoice::Cuda).unwrap_err(),
                DeviceError::NotBuilt
            );
        }
    }

    #[test]
    fn parses_device_names() {
        assert_eq!("CPU".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!("cuda".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda);
        assert!(matches!(
            "tpu".parse::<DeviceChoice>(),
            Err(DeviceError::Unknown(_))
        ));
    }
}
