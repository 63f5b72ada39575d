//! Beat-model files: one `.safetensors` file with the weights under stable names and, in the
//! header's metadata, what is needed to trust them. Loading needs no candle: the plugin's
//! analysis thread reads plain `f32` arrays.
//!
//! Tensors: `stem.weight` `[C, 3 * 40]`, `stem.bias` `[C]`; for each block `i`
//! `blocks.{i}.conv.weight` `[C, 3 * C]`, `blocks.{i}.conv.bias` `[C]`,
//! `blocks.{i}.proj.weight` `[C, C]`, `blocks.{i}.proj.bias` `[C]`; `head.weight` `[2, C]`,
//! `head.bias` `[2]`. Convolution weights are tap-major within a row (see `Conv`).
//!
//! Metadata (string values, JSON where noted): `cutscore.format` = `"cutscore-beat-model"`,
//! `cutscore.format_version` = `"1"`, `cutscore.input` = [`INPUT_SCHEMA`] (the front end's
//! frames the model reads; a model for other inputs is refused), `cutscore.config` (JSON
//! [`BeatModelConfig`]), `cutscore.metrics` (JSON [`BeatTrainingMetrics`]),
//! `cutscore.provenance` (JSON [`BeatProvenance`]), `cutscore.model_id` (16 hex digits of
//! SHA-256 over the tensors). Saving is atomic ([`cutscore_core::atomic`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{BeatModel, BeatModelConfig, Block, Conv, INPUT_BANDS, OUTPUTS, TAPS};

const FORMAT: &str = "cutscore-beat-model";
const FORMAT_VERSION: &str = "1";
/// The inputs a beat model reads: the 40-band normalised log-mel spectrum of the front end
/// (22.05 kHz, 1024-sample frames every 512 samples). Changing the front end bumps it.
pub const INPUT_SCHEMA: &str = "mel40-hop512-v1";

/// The shipped beat model's bytes (`analysis/shipped/beats.safetensors`).
pub const SHIPPED_BYTES: &[u8] = include_bytes!("../../shipped/beats.safetensors");

/// Why a beat model was refused.
#[derive(Debug, thiserror::Error)]
pub enum BeatModelError {
    #[error("beat model configuration is not valid: {0}")]
    Config(String),
    #[error("not a safetensors file: {0}")]
    NotSafetensors(String),
    #[error("not a Cutscore beat model: metadata `{key}` is {found}; expected {expected}")]
    Foreign {
        key: &'static str,
        found: String,
        expected: String,
    },
    #[error("metadata `{key}` is not valid: {reason}")]
    Metadata { key: &'static str, reason: String },
    #[error("tensor `{name}` {problem}")]
    Tensor { name: String, problem: String },
    #[error("cannot read beat model {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write beat model {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One epoch of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeatEpoch {
    pub epoch: usize,
    pub train_loss: f32,
    pub val_loss: f32,
    /// Mean beat F-measure of the offline tracker on the validation songs.
    pub val_beat_f: f32,
    /// Mean downbeat F-measure on the validation songs.
    pub val_downbeat_f: f32,
}

/// How training went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BeatTrainingMetrics {
    pub epochs: Vec<BeatEpoch>,
    /// Epoch whose weights were kept.
    pub best_epoch: Option<usize>,
    pub wall_seconds: Option<f64>,
}

/// Where a beat model came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BeatProvenance {
    /// Training songs and their total length.
    pub songs: usize,
    pub seconds: f64,
    /// `model_id` of the model training started from.
    pub base_model: Option<String>,
    /// The command that made it.
    pub command: Option<String>,
    /// RFC 3339 time of saving.
    pub created: Option<String>,
}

/// Everything a beat-model file says besides its weights.
#[derive(Debug, Clone, PartialEq)]
pub struct BeatModelInfo {
    pub config: BeatModelConfig,
    pub metrics: BeatTrainingMetrics,
    pub provenance: BeatProvenance,
    pub model_id: String,
}

/// The names and shapes of every tensor of `config`.
pub fn tensor_shapes(config: &BeatModelConfig) -> BTreeMap<String, Vec<usize>> {
    let c = config.channels;
    let mut shapes = BTreeMap::from([
        ("stem.weight".to_owned(), vec![c, TAPS * INPUT_BANDS]),
        ("stem.bias".to_owned(), vec![c]),
        ("head.weight".to_owned(), vec![OUTPUTS, c]),
        ("head.bias".to_owned(), vec![OUTPUTS]),
    ]);
    for i in 0..config.dilations.len() {
        shapes.insert(format!("blocks.{i}.conv.weight"), vec![c, TAPS * c]);
        shapes.insert(format!("blocks.{i}.conv.bias"), vec![c]);
        shapes.insert(format!("blocks.{i}.proj.weight"), vec![c, c]);
        shapes.insert(format!("blocks.{i}.proj.bias"), vec![c]);
    }
    shapes
}

/// Writes `weights` (every tensor of [`tensor_shapes`], row-major `f32`) with metadata; returns
/// the model id.
pub fn save(
    path: &Path,
    config: &BeatModelConfig,
    weights: &BTreeMap<String, Vec<f32>>,
    metrics: &BeatTrainingMetrics,
    provenance: &BeatProvenance,
) -> Result<String, BeatModelError> {
    config.validate()?;
    let shapes = tensor_shapes(config);
    for (name, shape) in &shapes {
        let values = weights.get(name).ok_or_else(|| BeatModelError::Tensor {
            name: name.clone(),
            problem: "is missing".to_owned(),
        })?;
        check_values(name, shape, values)?;
    }
    let model_id = model_id(weights);
    let mut provenance = provenance.clone();
    if provenance.created.is_none() {
        provenance.created =
            Some(humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string());
    }
    let metadata = HashMap::from([
        ("cutscore.format".to_owned(), FORMAT.to_owned()),
        (
            "cutscore.format_version".to_owned(),
            FORMAT_VERSION.to_owned(),
        ),
        ("cutscore.input".to_owned(), INPUT_SCHEMA.to_owned()),
        ("cutscore.config".to_owned(), json(config)),
        ("cutscore.metrics".to_owned(), json(metrics)),
        ("cutscore.provenance".to_owned(), json(&provenance)),
        ("cutscore.model_id".to_owned(), model_id.clone()),
    ]);
    let bytes: BTreeMap<&String, Vec<u8>> = shapes
        .keys()
        .map(|name| {
            let raw = weights[name].iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, raw)
        })
        .collect();
    let views = shapes
        .iter()
        .map(|(name, shape)| {
            TensorView::new(Dtype::F32, shape.clone(), &bytes[name])
                .map(|view| (name.clone(), view))
                .map_err(|e| BeatModelError::NotSafetensors(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let file = safetensors::serialize(views, Some(metadata))
        .map_err(|e| BeatModelError::NotSafetensors(e.to_string()))?;
    cutscore_core::atomic::write(path, &file).map_err(|source| BeatModelError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(model_id)
}

/// Reads and checks a beat-model file.
pub fn read(path: &Path) -> Result<BeatModel, BeatModelError> {
    let bytes = std::fs::read(path).map_err(|source| BeatModelError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    from_bytes(&bytes)
}

/// Parses and checks a beat model: format, input schema, config, and every tensor's name,
/// shape, dtype and finiteness.
pub fn from_bytes(bytes: &[u8]) -> Result<BeatModel, BeatModelError> {
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| BeatModelError::NotSafetensors(e.to_string()))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let required = |key: &'static str| {
        metadata.get(key).ok_or(BeatModelError::Foreign {
            key,
            found: "missing".to_owned(),
            expected: "present".to_owned(),
        })
    };
    for (key, expected) in [
        ("cutscore.format", FORMAT),
        ("cutscore.format_version", FORMAT_VERSION),
        ("cutscore.input", INPUT_SCHEMA),
    ] {
        let found = required(key)?;
        if found != expected {
            return Err(BeatModelError::Foreign {
                key,
                found: format!("`{found}`"),
                expected: format!("`{expected}`"),
            });
        }
    }
    let config: BeatModelConfig = parse("cutscore.config", required("cutscore.config")?)?;
    config.validate()?;
    let metrics = match metadata.get("cutscore.metrics") {
        Some(v) => parse("cutscore.metrics", v)?,
        None => BeatTrainingMetrics::default(),
    };
    let provenance = match metadata.get("cutscore.provenance") {
        Some(v) => parse("cutscore.provenance", v)?,
        None => BeatProvenance::default(),
    };
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| BeatModelError::NotSafetensors(e.to_string()))?;
    let shapes = tensor_shapes(&config);
    let mut weights: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    for (name, shape) in &shapes {
        let view = st.tensor(name).map_err(|_| BeatModelError::Tensor {
            name: name.clone(),
            problem: "is missing".to_owned(),
        })?;
        if view.dtype() != Dtype::F32 {
            return Err(BeatModelError::Tensor {
                name: name.clone(),
                problem: format!("is {:?}; expected F32", view.dtype()),
            });
        }
        if view.shape() != shape.as_slice() {
            return Err(BeatModelError::Tensor {
                name: name.clone(),
                problem: format!("has shape {:?}; expected {shape:?}", view.shape()),
            });
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        check_values(name, shape, &values)?;
        weights.insert(name.clone(), values);
    }
    if let Some(extra) = st.names().into_iter().find(|n| !shapes.contains_key(*n)) {
        return Err(BeatModelError::Tensor {
            name: extra.to_owned(),
            problem: "is not part of this architecture".to_owned(),
        });
    }
    BeatModel::from_weights(config, weights, metrics, provenance)
}

impl BeatModel {
    /// The weights by name, as the file stores them and [`BeatModel::from_weights`] takes them.
    pub fn weights(&self) -> BTreeMap<String, Vec<f32>> {
        let mut out = BTreeMap::new();
        let mut put = |name: &str, conv: &Conv| {
            out.insert(format!("{name}.weight"), conv.weight.clone());
            out.insert(format!("{name}.bias"), conv.bias.clone());
        };
        put("stem", &self.stem);
        for (i, block) in self.blocks.iter().enumerate() {
            put(&format!("blocks.{i}.conv"), &block.conv);
            put(&format!("blocks.{i}.proj"), &block.proj);
        }
        put("head", &self.head);
        out
    }

    /// The weights of the line from `self` (at 0) to `other` (at 1) at `t`: the interpolation
    /// of a fine-tuned model with the one it started from (Wortsman et al., "Robust
    /// fine-tuning of zero-shot models", 2022), which can keep some of what the start knew
    /// along with what fine-tuning taught. Both must have the same architecture.
    pub fn interpolate(
        &self,
        other: &BeatModel,
        t: f32,
    ) -> Result<BTreeMap<String, Vec<f32>>, BeatModelError> {
        if self.info.config != other.info.config {
            return Err(BeatModelError::Config(format!(
                "cannot interpolate models of different architectures ({:?} and {:?})",
                self.info.config, other.info.config
            )));
        }
        if !(0.0..=1.0).contains(&t) {
            return Err(BeatModelError::Config(format!(
                "interpolation weight {t} is outside 0 to 1"
            )));
        }
        let theirs = other.weights();
        Ok(self
            .weights()
            .into_iter()
            .map(|(name, mine)| {
                let blended = mine
                    .iter()
                    .zip(&theirs[&name])
                    .map(|(a, b)| a + t * (b - a))
                    .collect();
                (name, blended)
            })
            .collect())
    }

    /// A model from checked-shape weights by name (as [`tensor_shapes`] names them).
    pub fn from_weights(
        config: BeatModelConfig,
        mut weights: BTreeMap<String, Vec<f32>>,
        metrics: BeatTrainingMetrics,
        provenance: BeatProvenance,
    ) -> Result<BeatModel, BeatModelError> {
        config.validate()?;
        for (name, shape) in tensor_shapes(&config) {
            let values = weights.get(&name).ok_or_else(|| BeatModelError::Tensor {
                name: name.clone(),
                problem: "is missing".to_owned(),
            })?;
            check_values(&name, &shape, values)?;
        }
        let model_id = model_id(&weights);
        let mut take = |name: &str, outputs: usize, inputs: usize| Conv {
            outputs,
            inputs,
            weight: weights
                .remove(&format!("{name}.weight"))
                .unwrap_or_default(),
            bias: weights.remove(&format!("{name}.bias")).unwrap_or_default(),
        };
        let c = config.channels;
        let stem = take("stem", c, INPUT_BANDS);
        let blocks = config
            .dilations
            .iter()
            .enumerate()
            .map(|(i, &dilation)| Block {
                dilation,
                conv: take(&format!("blocks.{i}.conv"), c, c),
                proj: take(&format!("blocks.{i}.proj"), c, c),
            })
            .collect();
        let head = take("head", OUTPUTS, c);
        Ok(BeatModel {
            info: BeatModelInfo {
                config,
                metrics,
                provenance,
                model_id,
            },
            stem,
            blocks,
            head,
        })
    }
}

fn check_values(name: &str, shape: &[usize], values: &[f32]) -> Result<(), BeatModelError> {
    let expected: usize = shape.iter().product();
    if values.len() != expected {
        return Err(BeatModelError::Tensor {
            name: name.to_owned(),
            problem: format!("has {} values; expected {expected}", values.len()),
        });
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(BeatModelError::Tensor {
            name: name.to_owned(),
            problem: format!("has a non-finite value at index {i}"),
        });
    }
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(key: &'static str, v: &str) -> Result<T, BeatModelError> {
    serde_json::from_str(v).map_err(|e| BeatModelError::Metadata {
        key,
        reason: e.to_string(),
    })
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("metadata types always serialize")
}

fn model_id(weights: &BTreeMap<String, Vec<f32>>) -> String {
    let mut hash = Sha256::new();
    for (name, values) in weights {
        hash.update(name.as_bytes());
        for v in values {
            hash.update(v.to_le_bytes());
        }
    }
    hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
