//! Reward-model checkpoints: one `.safetensors` file holding the weights under their stable
//! names and, in the safetensors header's metadata, everything needed to trust them.
//!
//! Metadata keys (all string values, JSON where noted):
//! - `cutscore.format` = `"cutscore-reward-model"`, `cutscore.format_version` = `"1"`;
//! - `cutscore.feature_schema`: the [`FEATURE_SCHEMA_VERSION`] the model was trained on; a
//!   checkpoint for other features is refused;
//! - `cutscore.config` (JSON [`Config`]), `cutscore.metrics` (JSON [`TrainingMetrics`]),
//!   `cutscore.provenance` (JSON [`Provenance`]);
//! - `cutscore.model_id`: the first 16 hex digits of SHA-256 over the tensors, which the
//!   decision log records as "the model that scored it";
//! - `cutscore.taste_schema`, only in a model with a taste layer (tensors `taste.weight`,
//!   `taste.bound`, when the layer fades out below one `taste.floor`, and from schema 4 the
//!   range each input is read within, `taste.low` and `taste.high`: the user's taste learned
//!   by `trainer finetune`): [`TASTE_SCHEMA_VERSION`] (all [`TASTE_INPUTS`] weights and their
//!   range, the floor optional and measured from the track's reference score), or an earlier
//!   layer's 4 (the same with a floor that is a score), 3 (that without a range), 1 (the
//!   first [`TASTE_INPUTS_V2`] weights, no floor) or 2 (the same with a floor), which are
//!   still read.
//!
//! Loading checks every tensor's name, shape and dtype against the config and refuses
//! non-finite values, naming the tensor. Weights may be stored as f32, f16 or bf16; they are
//! always loaded as f32. Saving goes through [`cutscore_core::atomic`], so a crash never leaves a
//! half-written model where the plugin reads one.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use safetensors::SafeTensors;
use safetensors::tensor::Dtype;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Config, ModelError, RewardModel};
use cutscore_core::features::FEATURE_SCHEMA_VERSION;
use cutscore_core::taste::{
    FloorFrom, InputRange, TASTE_INPUTS, TASTE_INPUTS_V2, TASTE_SCHEMA_GATED_V2,
    TASTE_SCHEMA_SCORE_FLOOR, TASTE_SCHEMA_UNCLAMPED, TASTE_SCHEMA_UNGATED, TASTE_SCHEMA_VERSION,
    TasteError, TasteLayer,
};

const FORMAT: &str = "cutscore-reward-model";
const FORMAT_VERSION: u32 = 1;
/// Name of the taste layer's weights.
const TASTE_TENSOR: &str = "taste.weight";
/// Name of the taste layer's bound (one number).
const TASTE_BOUND: &str = "taste.bound";
/// Name of the taste layer's floor (one number; taste schema 2 on).
const TASTE_FLOOR: &str = "taste.floor";
/// Names of the two ends of the range each input is read within (taste schema 4 on).
const TASTE_LOW: &str = "taste.low";
const TASTE_HIGH: &str = "taste.high";
const TASTE_SCHEMA_KEY: &str = "cutscore.taste_schema";

/// One epoch of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f32,
    pub train_accuracy: f32,
    pub val_loss: f32,
    pub val_accuracy: f32,
}

/// How training went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainingMetrics {
    pub epochs: Vec<EpochMetrics>,
    /// Epoch whose weights were kept (best validation loss).
    pub best_epoch: Option<usize>,
    pub best_val_accuracy: Option<f32>,
    /// Why training stopped, e.g. "no validation improvement for 4 epochs".
    pub stop_reason: Option<String>,
    pub wall_seconds: Option<f64>,
    pub device: Option<String>,
}

/// Where a model came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Provenance {
    /// Preference pairs trained on.
    pub pairs: usize,
    /// Of those, pairs from the user's own decisions (fine-tuning).
    pub user_pairs: usize,
    pub seeds: Vec<u64>,
    /// `model_id` of the model this one was fine-tuned from.
    pub base_model: Option<String>,
    /// The command that made it.
    pub command: Option<String>,
    /// RFC 3339 time of saving.
    pub created: Option<String>,
}

/// Everything a checkpoint says besides its weights.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointInfo {
    pub config: Config,
    pub feature_schema: u32,
    pub metrics: TrainingMetrics,
    pub provenance: Provenance,
    pub model_id: String,
}

/// How weights are stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageType {
    #[default]
    F32,
    F16,
    Bf16,
}

/// Why a checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not a safetensors file: {0}")]
    NotSafetensors(String),
    #[error("not a Cutscore reward model: metadata `{key}` is {found}; expected {expected}")]
    Foreign {
        key: &'static str,
        found: String,
        expected: String,
    },
    #[error("model was made for feature schema v{actual}; this build reads v{expected}")]
    Schema { expected: u32, actual: u32 },
    #[error(
        "the model's taste layer reads taste summary v{actual}; this build reads v{expected} (run `trainer finetune` again)"
    )]
    TasteSchema { expected: u32, actual: u32 },
    #[error("taste layer: {0}")]
    Taste(#[from] cutscore_core::taste::TasteError),
    #[error("metadata `{key}` is not valid: {reason}")]
    Metadata { key: &'static str, reason: String },
    #[error("tensor `{name}` is missing; expected shape {expected:?}")]
    MissingTensor { name: String, expected: Vec<usize> },
    #[error("tensor `{name}` is not part of this model's config")]
    UnexpectedTensor { name: String },
    #[error("tensor `{name}` has shape {actual:?}; expected {expected:?}")]
    TensorShape {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("tensor `{name}` is stored as {actual}; expected F32, F16 or BF16")]
    TensorDtype { name: String, actual: String },
    #[error("tensor `{name}` holds a non-finite value at element {index}")]
    NonFinite { name: String, index: usize },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("tensor conversion failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Names and shapes of every weight the config makes, sorted by name.
pub fn tensor_shapes(config: &Config) -> Result<BTreeMap<String, Vec<usize>>, ModelError> {
    let map = VarMap::new();
    RewardModel::new(
        config,
        VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu),
    )?;
    let data = map.data().lock().expect("a fresh VarMap is not poisoned");
    Ok(data
        .iter()
        .map(|(name, var)| (name.clone(), var.dims().to_vec()))
        .collect())
}

/// Saves the weights in `varmap` with `info`'s metadata (its `model_id` is recomputed and
/// returned). Atomic: the destination holds the old file or the complete new one.
pub fn save(
    path: &Path,
    varmap: &VarMap,
    config: &Config,
    metrics: &TrainingMetrics,
    provenance: &Provenance,
    storage: StorageType,
) -> Result<String, CheckpointError> {
    let dtype = match storage {
        StorageType::F32 => DType::F32,
        StorageType::F16 => DType::F16,
        StorageType::Bf16 => DType::BF16,
    };
    let tensors: BTreeMap<String, Tensor> = {
        let data = varmap.data().lock().expect("VarMap lock poisoned");
        data.iter()
            .map(|(name, var)| {
                let t = var.as_tensor().to_device(&Device::Cpu)?.to_dtype(dtype)?;
                Ok((name.clone(), t))
            })
            .collect::<candle_core::Result<_>>()?
    };
    write(path, tensors, config, metrics, provenance, None)
}

/// Writes `tensors` with the metadata; returns the new `model_id`.
fn write(
    path: &Path,
    tensors: BTreeMap<String, Tensor>,
    config: &Config,
    metrics: &TrainingMetrics,
    provenance: &Provenance,
    taste_schema: Option<u32>,
) -> Result<String, CheckpointError> {
    let model_id = model_id(&tensors)?;
    let mut provenance = provenance.clone();
    if provenance.created.is_none() {
        provenance.created =
            Some(humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string());
    }
    let mut metadata = HashMap::from([
        ("cutscore.format".to_string(), FORMAT.to_string()),
        (
            "cutscore.format_version".to_string(),
            FORMAT_VERSION.to_string(),
        ),
        (
            "cutscore.feature_schema".to_string(),
            FEATURE_SCHEMA_VERSION.to_string(),
        ),
        ("cutscore.config".to_string(), json(config)),
        ("cutscore.metrics".to_string(), json(metrics)),
        ("cutscore.provenance".to_string(), json(&provenance)),
        ("cutscore.model_id".to_string(), model_id.clone()),
    ]);
    if let Some(schema) = taste_schema {
        metadata.insert(TASTE_SCHEMA_KEY.to_string(), schema.to_string());
    }
    let bytes = safetensors::serialize(&tensors, Some(metadata))
        .map_err(|e| CheckpointError::NotSafetensors(e.to_string()))?;
    cutscore_core::atomic::write(path, &bytes).map_err(|source| CheckpointError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(model_id)
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("metadata types always serialize")
}

fn model_id(tensors: &BTreeMap<String, Tensor>) -> candle_core::Result<String> {
    let mut hash = Sha256::new();
    for (name, tensor) in tensors {
        hash.update(name.as_bytes());
        let values: Vec<f32> = tensor.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        for v in values {
            hash.update(v.to_le_bytes());
        }
    }
    Ok(hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A checked checkpoint: metadata plus f32 weights on the CPU.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub info: CheckpointInfo,
    /// The user's taste layer, in a fine-tuned model.
    pub taste: Option<TasteLayer>,
    tensors: HashMap<String, Tensor>,
}

impl Checkpoint {
    /// Reads and checks a checkpoint file.
    pub fn read(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }

    /// Checks a checkpoint held in memory (the embedded default model).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CheckpointError> {
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| CheckpointError::NotSafetensors(e.to_string()))?;
        let metadata = header.metadata().clone().unwrap_or_default();
        let info = read_info(&metadata)?;
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| CheckpointError::NotSafetensors(e.to_string()))?;
        let expected = tensor_shapes(&info.config)?;
        let taste = read_taste(&st, &metadata)?;
        for name in st.names() {
            if !expected.contains_key(name)
                && ![
                    TASTE_TENSOR,
                    TASTE_BOUND,
                    TASTE_FLOOR,
                    TASTE_LOW,
                    TASTE_HIGH,
                ]
                .contains(&name)
            {
                return Err(CheckpointError::UnexpectedTensor {
                    name: name.to_string(),
                });
            }
        }
        let mut tensors = HashMap::new();
        for (name, shape) in expected {
            let view = st
                .tensor(&name)
                .map_err(|_| CheckpointError::MissingTensor {
                    name: name.clone(),
                    expected: shape.clone(),
                })?;
            if !matches!(view.dtype(), Dtype::F32 | Dtype::F16 | Dtype::BF16) {
                return Err(CheckpointError::TensorDtype {
                    name,
                    actual: format!("{:?}", view.dtype()),
                });
            }
            if view.shape() != shape.as_slice() {
                return Err(CheckpointError::TensorShape {
                    name,
                    expected: shape,
                    actual: view.shape().to_vec(),
                });
            }
            let tensor =
                candle_core::safetensors::Load::load(&view, &Device::Cpu)?.to_dtype(DType::F32)?;
            let values: Vec<f32> = tensor.flatten_all()?.to_vec1()?;
            if let Some(index) = values.iter().position(|v| !v.is_finite()) {
                return Err(CheckpointError::NonFinite { name, index });
            }
            tensors.insert(name, tensor);
        }
        Ok(Self {
            info,
            taste,
            tensors,
        })
    }

    /// The model, with its weights copied to `device` and its taste layer, for scoring.
    pub fn model(&self, device: &Device) -> Result<RewardModel, CheckpointError> {
        let vb = VarBuilder::from_tensors(self.tensors.clone(), DType::F32, device);
        Ok(RewardModel::new(&self.info.config, vb)?.with_taste(self.taste.clone()))
    }

    /// Saves this model's transformer with `taste` as its taste layer (replacing any it had):
    /// what `trainer finetune` writes. Returns the new `model_id`; atomic like [`save`].
    pub fn save_with_taste(
        &self,
        path: &Path,
        taste: &TasteLayer,
        metrics: &TrainingMetrics,
        provenance: &Provenance,
    ) -> Result<String, CheckpointError> {
        // Schema 5 alone says the floor is measured from the track, and it carries a range.
        if taste.needs_reference() && taste.range().is_none() {
            return Err(TasteError::TrackFloorWithoutRange.into());
        }
        let mut tensors: BTreeMap<String, Tensor> = self
            .tensors
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let weights = taste.weights();
        tensors.insert(
            TASTE_TENSOR.to_string(),
            Tensor::from_slice(weights, weights.len(), &Device::Cpu)?,
        );
        tensors.insert(
            TASTE_BOUND.to_string(),
            Tensor::from_slice(&[taste.bound()], 1, &Device::Cpu)?,
        );
        if let Some(floor) = taste.floor() {
            tensors.insert(
                TASTE_FLOOR.to_string(),
                Tensor::from_slice(&[floor], 1, &Device::Cpu)?,
            );
        }
        if let Some(range) = taste.range() {
            for (name, side) in [(TASTE_LOW, range.low()), (TASTE_HIGH, range.high())] {
                tensors.insert(
                    name.to_string(),
                    Tensor::from_slice(side, side.len(), &Device::Cpu)?,
                );
            }
        }
        let schema = taste.schema();
        write(
            path,
            tensors,
            &self.info.config,
            metrics,
            provenance,
            Some(schema),
        )
    }

    /// The model with trainable weights in a fresh [`VarMap`], to go on training it with
    /// `dropout` in place of the rate it was trained with (dropout acts only while training, so
    /// the scores are the same).
    pub fn trainable(
        &self,
        dropout: f32,
        device: &Device,
    ) -> Result<(RewardModel, VarMap), CheckpointError> {
        let config = Config {
            dropout,
            ..self.info.config.clone()
        };
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let model = RewardModel::new(&config, vb)?;
        crate::set_vars(&varmap, &self.tensors, device)?;
        Ok((model, varmap))
    }
}

/// The taste layer, when the file has one: its tensor and its schema come together.
fn read_taste(
    st: &SafeTensors,
    metadata: &HashMap<String, String>,
) -> Result<Option<TasteLayer>, CheckpointError> {
    let schema = match (
        metadata.get(TASTE_SCHEMA_KEY),
        st.tensor(TASTE_TENSOR).is_ok(),
    ) {
        (None, false) => return Ok(None),
        (Some(schema), true) => schema,
        (None, true) => {
            return Err(CheckpointError::Foreign {
                key: "cutscore.taste_schema",
                found: "missing".into(),
                expected: format!("present beside tensor `{TASTE_TENSOR}`"),
            });
        }
        (Some(_), false) => {
            return Err(CheckpointError::MissingTensor {
                name: TASTE_TENSOR.to_string(),
                expected: vec![TASTE_INPUTS],
            });
        }
    };
    let actual: u32 = parse(schema, "cutscore.taste_schema")?;
    let inputs = match actual {
        TASTE_SCHEMA_VERSION | TASTE_SCHEMA_SCORE_FLOOR | TASTE_SCHEMA_UNCLAMPED => TASTE_INPUTS,
        TASTE_SCHEMA_UNGATED | TASTE_SCHEMA_GATED_V2 => TASTE_INPUTS_V2,
        _ => {
            return Err(CheckpointError::TasteSchema {
                expected: TASTE_SCHEMA_VERSION,
                actual,
            });
        }
    };
    let vector = |name: &str, len: usize| -> Result<Vec<f32>, CheckpointError> {
        let view = st
            .tensor(name)
            .map_err(|_| CheckpointError::MissingTensor {
                name: name.to_string(),
                expected: vec![len],
            })?;
        if view.shape() != [len] || !matches!(view.dtype(), Dtype::F32) {
            return Err(CheckpointError::TensorShape {
                name: name.to_string(),
                expected: vec![len],
                actual: view.shape().to_vec(),
            });
        }
        Ok(candle_core::safetensors::Load::load(&view, &Device::Cpu)?.to_vec1()?)
    };
    let weights = vector(TASTE_TENSOR, inputs)?;
    let bound = vector(TASTE_BOUND, 1)?[0];
    // Schema 1 has no floor and schema 2 always one; from schema 3, a layer that fades out
    // carries its floor and one that does not has none.
    let ungated = actual == TASTE_SCHEMA_UNGATED
        || (inputs == TASTE_INPUTS && st.tensor(TASTE_FLOOR).is_err());
    let floor = if ungated {
        None
    } else {
        Some(vector(TASTE_FLOOR, 1)?[0])
    };
    // From schema 4, every layer carries its range; from 5, its floor is measured from the
    // track.
    let range = if actual >= TASTE_SCHEMA_SCORE_FLOOR {
        Some(InputRange::new(
            &vector(TASTE_LOW, TASTE_INPUTS)?,
            &vector(TASTE_HIGH, TASTE_INPUTS)?,
        )?)
    } else {
        None
    };
    let from = if actual == TASTE_SCHEMA_VERSION {
        FloorFrom::Track
    } else {
        FloorFrom::Score
    };
    Ok(Some(
        TasteLayer::new(weights, bound)?
            .with_floor(floor, from)?
            .with_range(range)?,
    ))
}

fn read_info(metadata: &HashMap<String, String>) -> Result<CheckpointInfo, CheckpointError> {
    let get = |key: &'static str| {
        metadata.get(key).ok_or(CheckpointError::Foreign {
            key,
            found: "missing".into(),
            expected: "present".into(),
        })
    };
    let format = get("cutscore.format")?;
    if format != FORMAT {
        return Err(CheckpointError::Foreign {
            key: "cutscore.format",
            found: format!("`{format}`"),
            expected: format!("`{FORMAT}`"),
        });
    }
    let version: u32 = parse(get("cutscore.format_version")?, "cutscore.format_version")?;
    if version > FORMAT_VERSION {
        return Err(CheckpointError::Foreign {
            key: "cutscore.format_version",
            found: version.to_string(),
            expected: format!("{FORMAT_VERSION} or older (update Cutscore to read it)"),
        });
    }
    let feature_schema: u32 = parse(get("cutscore.feature_schema")?, "cutscore.feature_schema")?;
    if feature_schema != FEATURE_SCHEMA_VERSION {
        return Err(CheckpointError::Schema {
            expected: FEATURE_SCHEMA_VERSION,
            actual: feature_schema,
        });
    }
    let config: Config = parse(get("cutscore.config")?, "cutscore.config")?;
    config.validate().map_err(ModelError::from)?;
    let optional = |key: &'static str| metadata.get(key).map(|v| (key, v));
    Ok(CheckpointInfo {
        config,
        feature_schema,
        metrics: optional("cutscore.metrics")
            .map_or(Ok(TrainingMetrics::default()), |(k, v)| parse(v, k))?,
        provenance: optional("cutscore.provenance")
            .map_or(Ok(Provenance::default()), |(k, v)| parse(v, k))?,
        model_id: get("cutscore.model_id")?.clone(),
    })
}

fn parse<T: serde::de::DeserializeOwned>(
    text: &str,
    key: &'static str,
) -> Result<T, CheckpointError> {
    serde_json::from_str(text).map_err(|e| CheckpointError::Metadata {
        key,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
