//! `cargo xtask bundle cutscore-plugin --release`: builds the plugin with nice-plug's bundler
//! (bundle names from `bundler.toml`) and then copies the bundles from `target/bundled/` to
//! `bundles/`, where the README and `bundles/README.md` say they are. It also builds the
//! `trainer` binary in the same profile and puts it beside them: installed next to the plugin,
//! it is what the editor's "Learn from my decisions" button runs.

use std::path::{Path, PathBuf};

use nice_plug_xtask::Result;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    nice_plug_xtask::main_with_args("cargo xtask", args.clone())?;
    if args
        .first()
        .is_some_and(|command| command.starts_with("bundle"))
    {
        // `main_with_args` moved us to the workspace root.
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| PathBuf::from("target"), PathBuf::from);
        let bundled = target.join("bundled");
        let out = Path::new("bundles");
        for entry in std::fs::read_dir(&bundled)? {
            let from = entry?.path();
            let Some(name) = from.file_name() else {
                continue;
            };
            let to = out.join(name);
            if to.is_dir() {
                std::fs::remove_dir_all(&to)?;
            }
            copy(&from, &to)?;
            println!("Copied {} to {}", from.display(), to.display());
        }
        let trainer = build_trainer(&target, &args)?;
        let to = out.join(trainer.file_name().expect("a binary's path names a file"));
        // A running trainer (the Learn button of a plugin symlinked from here) cannot be
        // written over; on Unix, unlinked, it runs on and the new one takes its name (Windows
        // refuses to remove it: close the DAW first).
        if to.is_file() {
            std::fs::remove_file(&to)?;
        }
        copy(&trainer, &to)?;
        println!("Copied {} to {}", trainer.display(), to.display());
    }
    Ok(())
}

/// Builds the `trainer` binary with the profile and target the bundle was built with
/// (`--release`, `--profile NAME`, `--target TRIPLE` among `bundle_args`) and returns its path
/// under `target`.
fn build_trainer(target: &Path, bundle_args: &[String]) -> Result<PathBuf> {
    let value_of = |flag: &str| {
        bundle_args
            .iter()
            .position(|a| a == flag)
            .and_then(|i| bundle_args.get(i + 1))
            .cloned()
            .or_else(|| {
                let prefix = format!("{flag}=");
                bundle_args
                    .iter()
                    .find_map(|a| a.strip_prefix(&prefix).map(str::to_owned))
            })
    };
    let release = bundle_args.iter().any(|a| a == "--release" || a == "-r");
    let profile =
        value_of("--profile").unwrap_or_else(|| if release { "release" } else { "dev" }.to_owned());
    let triple = value_of("--target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command.args(["build", "--package", "cutscore-trainer", "--bin", "trainer"]);
    command.args(["--profile", &profile]);
    if let Some(triple) = &triple {
        command.args(["--target", triple]);
    }
    let status = command.status()?;
    if !status.success() {
        return Err(
            std::io::Error::other(format!("building the trainer failed ({status})")).into(),
        );
    }
    let name = format!("trainer{}", std::env::consts::EXE_SUFFIX);
    // Cargo's folder for the `dev` profile is `debug`.
    let folder = if profile == "dev" { "debug" } else { &profile };
    Ok(match &triple {
        Some(triple) => target.join(triple).join(folder).join(name),
        None => target.join(folder).join(name),
    })
}

/// Copies a file, or a folder recursively.
fn copy(from: &Path, to: &Path) -> std::io::Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(from, to).map(|_| ())
    }
}
