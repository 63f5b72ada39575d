//! `trainer taste-eval`: the whole taste-learning loop with simulated users
//! (`cutscore_training::taste_eval`): each user decides on the plugin's proposals for some songs,
//! `trainer finetune`'s fine-tuning runs on those decisions, and the result is measured on songs
//! the user never decided on and on fresh synthetic pairs. Prints one row per user and count.

use anyhow::Context;
use cutscore_reward::device::{self, DeviceChoice};
use cutscore_training::simulated_users::{self, User};
use cutscore_training::taste_eval::{self, EvalProgress, TasteEvalOptions, TasteRow};
use cutscore_training::teach_eval::{Asking, TeachCurve, TeachOptions};

use super::shared::TasteArgs;
use indicatif::{ProgressBar, ProgressStyle};

use cutscore_reward::checkpoint::Checkpoint;
use cutscore_reward::shipped;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Decision counts to fine-tune on, each from the base model (whole songs: rounded up to a
    /// multiple of --proposals).
    #[arg(long, value_delimiter = ',', default_value = "100")]
    decisions: Vec<usize>,
    /// Users to simulate [default: the panel; with --recordings all but keep-chorus]: lift,
    /// long-cuts, quiet-out, keep-chorus, lift-noisy; or tastes nothing was tuned on (never
    /// use them to choose): drop, short-cuts, late-cuts, keep-loud, keep-busy, keep-ends,
    /// keep-intro, keep-outro.
    #[arg(long, value_delimiter = ',')]
    users: Vec<String>,
    /// Model the users start from [default: the shipped model].
    #[arg(long)]
    base: Option<std::path::PathBuf>,
    /// Proposals decided on per song.
    #[arg(long, default_value_t = 10)]
    proposals: usize,
    /// Songs nobody decides on, where agreement is measured.
    #[arg(long, default_value_t = 20)]
    held_out_songs: usize,
    /// Fresh synthetic pairs (20 per song) the craft kept is measured on: more measure it
    /// closer.
    #[arg(long, default_value_t = TasteEvalOptions::default().skill_pairs)]
    skill_pairs: usize,
    /// Seeds the songs, the users' noise and the fine-tuning.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    taste: TasteArgs,
    /// Where to run: auto (CUDA if available), cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Also ask each user this many "which is better?" questions, chosen as the pairs whose
    /// answer would teach the model most (the editor's Teach) and, for comparison, as the pairs
    /// it is least sure how to order and at random, and report how many answers reach 90 %
    /// agreement each way.
    #[arg(long, value_name = "QUESTIONS")]
    teach: Option<usize>,
    /// With --teach: questions answered before the model learns again (the answers a user
    /// gives between two presses of Learn).
    #[arg(long, value_name = "QUESTIONS", requires = "teach", default_value_t = TeachOptions::default().per_round)]
    teach_round: usize,
    /// Decide on the recordings in this folder (WAV, FLAC, Ogg, MP3, AIFF) instead of
    /// synthetic songs: each is analysed as `trainer edit` analyses it, the base model
    /// proposes cuts on the grid it finds, and the songs are shuffled by --seed into those
    /// decided on and --held-out-songs held out. Users whose taste is about the song's sections
    /// (keep-chorus) need synthetic songs and are left out by default.
    #[arg(long, value_name = "DIR")]
    recordings: Option<std::path::PathBuf>,
    /// Keep each user's decisions as a prefs folder `DIR/<user>-<decisions>/` (for
    /// `trainer finetune DIR/lift-100 --curve curve.png`, say).
    #[arg(long, value_name = "DIR")]
    keep_prefs: Option<std::path::PathBuf>,
    /// Print JSON lines (one per row) instead of the table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let panel = simulated_users::panel();
    let users: Vec<User> = if args.users.is_empty() {
        panel
            .into_iter()
            .filter(|u| args.recordings.is_none() || !u.taste.needs_form())
            .collect()
    } else {
        let known: Vec<User> = panel
            .into_iter()
            .chain(simulated_users::unseen_panel())
            .collect();
        args.users
            .iter()
            .map(|name| {
                known
                    .iter()
                    .find(|u| &u.name == name)
                    .cloned()
                    .ok_or_else(|| {
                        let names: Vec<&str> = known.iter().map(|u| u.name.as_str()).collect();
                        anyhow::anyhow!("no simulated user `{name}`; expected one of {names:?}")
                    })
            })
            .collect::<anyhow::Result<_>>()?
    };
    // The shipped model unless told otherwise: an evaluation does not depend on what this
    // machine's user has fine-tuned.
    let base = match &args.base {
        Some(path) => Checkpoint::read(path)
            .with_context(|| format!("loading the base model {}", path.display()))?,
        None => shipped::checkpoint().context("loading the shipped model")?,
    };
    let selected = device::select(args.device)?;
    // Teach re-learns as `trainer finetune` does, with the same weight of the replayed pairs.
    let finetune = args.taste.options(args.seed);
    let options = TasteEvalOptions {
        decisions: args.decisions,
        proposals: args.proposals,
        held_out_songs: args.held_out_songs,
        skill_pairs: args.skill_pairs,
        seed: args.seed,
        finetune: finetune.clone(),
        keep_prefs: args.keep_prefs,
        recordings: args.recordings,
        teach: args.teach.map(|questions| TeachOptions {
            questions,
            per_round: args.teach_round.max(1),
            replay: finetune.replay,
            seed: args.seed,
            ..TeachOptions::default()
        }),
    };
    let scratch = tempfile::tempdir().context("creating a scratch folder")?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg:28} [{bar:30}] {pos}/{len} {elapsed}")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    let runs = (users.len() * options.decisions.len()) as u64;
    let json = args.json;
    let report = taste_eval::run(
        &base,
        &users,
        &options,
        &selected.device,
        scratch.path(),
        |p| match p {
            EvalProgress::Songs { done, total } => {
                bar.set_message("songs and proposals");
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }
            EvalProgress::Finetune { user, decisions } => {
                if bar.message() != "fine-tuning" {
                    bar.set_length(runs);
                    bar.set_position(0);
                }
                bar.set_message("fine-tuning");
                bar.println(format!("{} on {decisions} decisions ...", user.name));
            }
            EvalProgress::Row(row) => {
                bar.inc(1);
                if json {
                    bar.suspend(|| println!("{}", serde_json::to_string(row).expect("serializes")));
                }
            }
            EvalProgress::Teach(curve) => {
                bar.set_message("teaching");
                if json {
                    bar.suspend(|| {
                        println!("{}", serde_json::to_string(curve).expect("serializes"))
                    });
                }
            }
        },
    )
    .context("running the taste loop")?;
    bar.finish_and_clear();
    if !json {
        let songs = if options.recordings.is_some() {
            "recordings"
        } else {
            "synthetic songs"
        };
        print_table(&report.rows, options.held_out_songs, songs);
        if !report.teach.is_empty() {
            print_teach(&report.teach);
        }
    }
    Ok(())
}

fn print_teach(curves: &[TeachCurve]) {
    let at = |curve: &TeachCurve, n: usize| {
        curve
            .points
            .iter()
            .rev()
            .find(|&&(answers, _)| answers <= n)
            .map_or("n/a".to_string(), |&(_, a)| format!("{:.1} %", a * 100.0))
    };
    println!();
    println!(
        "{:12} {:11} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "user", "asking", "to reach 90", "0", "50", "100", "200", "skill"
    );
    for c in curves {
        let asking = match c.asking {
            Asking::MostInformative => "informative",
            Asking::LeastSure => "least sure",
            Asking::Random => "random",
        };
        println!(
            "{:12} {:11} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9}",
            c.user,
            asking,
            c.answers_to_target
                .map_or("not reached".to_string(), |n| n.to_string()),
            at(c, 0),
            at(c, 50),
            at(c, 100),
            at(c, 200),
            c.skill_after
                .map_or("n/a".to_string(), |s| format!("{:.1} %", s * 100.0))
        );
    }
    println!(
        "agreement on held-out songs after that many answers to \"which is better?\"; skill: \
         accuracy on fresh synthetic pairs after the last answer (the craft kept)"
    );
}

fn print_table(rows: &[TasteRow], held_out_songs: usize, songs: &str) {
    let pct = |v: f32| format!("{:.1} %", v * 100.0);
    println!(
        "{:12} {:20} {:>9} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9}",
        "user",
        "taste heard",
        "decisions",
        "agree 0",
        "agree 1",
        "pairs",
        "skill 0",
        "skill 1",
        "tune s"
    );
    for r in rows {
        println!(
            "{:12} {:20} {:>9} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9.1}",
            r.user.name,
            r.user.taste.heard(),
            r.decisions,
            pct(r.agreement_before),
            pct(r.agreement_after),
            r.clear_pairs,
            pct(r.skill_before),
            pct(r.skill_after),
            r.finetune_seconds
        );
    }
    println!(
        "agree: the user's clear preferences on {held_out_songs} {songs} they never decided on, ordered as \
         they would, before (0) and after (1) fine-tuning; skill: accuracy on fresh synthetic pairs"
    );
}
