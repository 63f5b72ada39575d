//! `cargo xtask bundle cutscore-plugin --release`: builds the plugin and lays out
//! `bundles/Cutscore.clap` and `bundles/Cutscore.vst3` (names from `bundler.toml`), using
//! nice-plug's bundler.

fn main() -> nice_plug_xtask::Result<()> {
    nice_plug_xtask::main()
}
