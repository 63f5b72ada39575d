use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use cutscore_model::reward::{Batch, Config, RewardModel};
use std::time::Instant;
fn main() {
    let varmap = VarMap::new();
    let model = RewardModel::init(
        &Config {
            dropout: 0.0,
            ..Config::tiny()
        },
        &varmap,
        &Device::Cpu,
    )
    .unwrap();
    let seqs: Vec<Vec<f32>> = (0..128)
        .map(|i| {
            (0..36 * 125)
                .map(|j| ((i * j) as f32 * 0.001).sin())
                .collect()
        })
        .collect();
    let slices: Vec<&[f32]> = seqs.iter().map(Vec::as_slice).collect();
    for _ in 0..3 {
        let t = Instant::now();
        let batch = Batch::new(&slices, 125, 128, &Device::Cpu).unwrap();
        let t1 = t.elapsed();
        let s = model.forward(&batch.inputs, &batch.mask, false).unwrap();
        let t2 = t.elapsed();
        let s = model.forward(&batch.inputs, &batch.mask, true).unwrap();
        let t3 = t.elapsed();
        let g = s.sum_all().unwrap().backward().unwrap();
        let t4 = t.elapsed();
        println!(
            "batch {t1:?} fwd {:?} fwd_train {:?} bwd {:?}",
            t2 - t1,
            t3 - t2,
            t4 - t3
        );
        let _ = (g, Tensor::zeros(1, candle_core::DType::F32, &Device::Cpu));
    }
}
