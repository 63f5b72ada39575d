use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use cutscore_model::reward::{Config, RewardModel};
use std::time::Instant;
fn main() {
    let varmap = VarMap::new();
    let b: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(16);
    let model = RewardModel::init(&Config::default(), &varmap, &Device::Cpu).unwrap();
    let x = Tensor::randn(0f32, 1., (b, 128, 125), &Device::Cpu).unwrap();
    let m = Tensor::ones((b, 128), DType::F32, &Device::Cpu).unwrap();
    for _ in 0..6 {
        let t = Instant::now();
        let _ = model
            .forward(&x, &m, false)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        println!("fwd {:?}", t.elapsed());
    }
}
