//! Seeded weight initialisation. Candle's CPU random generator cannot be seeded, so initial
//! weights are drawn here instead: in construction order, from a seeded generator, following
//! each layer's own init hints. The same config and seed always give the same model.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Config, ModelError, RewardModel};

#[derive(Clone)]
struct SeededInit {
    rng: Arc<Mutex<StdRng>>,
    made: Arc<Mutex<HashMap<String, Tensor>>>,
}

impl SimpleBackend for SeededInit {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        hint: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let n = shape.elem_count();
        let mut rng = self.rng.lock().expect("init rng lock");
        let values: Vec<f32> = match hint {
            Init::Const(value) => vec![value as f32; n],
            Init::Uniform { lo, up } => (0..n)
                .map(|_| (lo + (up - lo) * rng.random::<f64>()) as f32)
                .collect(),
            Init::Randn { mean, stdev } => (0..n)
                .map(|_| {
                    // Box–Muller: two uniforms give one standard normal.
                    let (u, v) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
                    (mean + stdev * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos())
                        as f32
                })
                .collect(),
            Init::Kaiming { .. } => candle_core::bail!(
                "`{name}` asks for Kaiming init, which the reward model does not use"
            ),
        };
        let tensor = Tensor::from_vec(values, shape, dev)?.to_dtype(dtype)?;
        self.made
            .lock()
            .expect("init map lock")
            .insert(name.to_string(), tensor.clone());
        Ok(tensor)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!("seeded init cannot provide `{name}` without its shape")
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        false
    }
}

/// The initial weights of a model of `config` for `seed`, by checkpoint name, on the CPU.
pub fn seeded_weights(config: &Config, seed: u64) -> Result<HashMap<String, Tensor>, ModelError> {
    let backend = SeededInit {
        rng: Arc::new(Mutex::new(StdRng::seed_from_u64(seed))),
        made: Arc::new(Mutex::new(HashMap::new())),
    };
    let boxed: Box<dyn SimpleBackend> = Box::new(backend.clone());
    RewardModel::new(
        config,
        VarBuilder::from_backend(boxed, DType::F32, Device::Cpu),
    )?;
    let made = backend.made.lock().expect("init map lock").clone();
    Ok(made)
}

/// Overwrites every variable of `varmap` with the tensor of the same name.
pub fn set_vars(
    varmap: &VarMap,
    tensors: &HashMap<String, Tensor>,
    device: &Device,
) -> candle_core::Result<()> {
    let data = varmap.data().lock().expect("VarMap lock poisoned");
    for (name, var) in data.iter() {
        let tensor = tensors
            .get(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("no tensor for `{name}`")))?;
        var.set(&tensor.to_device(device)?)?;
    }
    Ok(())
}
