//! Headless CLAP host test: loads the built Cutscore `.clap` (the `cutscore-plugin` cdylib) with
//! `clack-host` and drives it the way a DAW would, without a GUI or an audio device.
//!
//! What it checks:
//! - the entry's plugin factory lists `com.cutscore.plugin`; by default the plugin has one main
//!   stereo input and one main stereo output port, and zero latency;
//! - at 44.1, 48 and 96 kHz, a fresh instance is activated (1 to 4096 frames per block) and fed
//!   150 s of a synthetic song (`cutscore_synth`) from a separate audio thread, with the
//!   transport playing (at 10x real time, so that the analysis keeps up), in seeded random block sizes from 1 to 4096 (both
//!   ends included); every output sample of every block must equal the input sample
//!   bit for bit (the output buffers are pre-filled with a NaN sentinel, so a plugin that leaves
//!   them alone fails);
//! - the main-thread callbacks the plugin asks for (`request_callback`) are served from the test
//!   thread while audio runs;
//! - scored cut proposals appear: after the song, the host keeps processing silence with the
//!   transport stopped, at about real time, and saves the state every 200 ms until its `summary`
//!   field reports `candidates > 0`, for at most 60 s; a fresh instance reports none;
//! - state saves and restores: `min_bars`, `max_bars` and `shown` are changed through the params
//!   extension, and the saved state, loaded into a fresh instance and saved again, has the same
//!   `params` and `fields`; the restored instance then still processes bit-exactly;
//! - the parameters' CLAP flags: the editor settings (`min_bars`, `max_bars`, `shown`,
//!   `fit_target`) are not automatable, `bypass` is the host's bypass and automatable;
//! - states saved by earlier versions load: each committed fixture `tests/fixtures/state_v<N>.json`
//!   (the JSON a state version saved with the values [`FIXTURE_VALUES`]; a CLAP state is that
//!   JSON after its length) is loaded into a fresh, bypassed instance, which then holds those
//!   values, saves the current state version and is not bypassed;
//! - the mono (1 in / 1 out) audio-ports configuration passes audio bit-exactly too;
//! - 100 activate / process / deactivate cycles across the three rates, switching between the
//!   stereo and mono layouts, after which the process has no more threads than before (Linux);
//! - the plugin logs no error through the host's log extension, reports no latency change.
//!
//! The plugin is `libcutscore_plugin.so` (`.dylib` / `.dll` elsewhere): the newer of the one in
//! `target/<profile>/deps/` beside this test binary (`cargo test -p cutscore-plugin` rebuilds
//! it there, as this test's dependency) and the one in `target/<profile>/` (`cargo build -p
//! cutscore-plugin`). Set the environment variable `CUTSCORE_CLAP_PATH` to the path of another
//! build of the library to test that one.
//!
//! A new state version adds its fixture to [`STATE_FIXTURES`]: run this test with the environment
//! variable `CUTSCORE_WRITE_STATE_FIXTURE` set to the fixture's path and it saves the fixture
//! values' state there first.
//!
//! Everything runs in one `#[test]` on purpose: the CLAP entry is process-global, and the thread
//! count check needs no other test running beside it.

use std::cell::Cell;
use std::ffi::CStr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use clack_extensions::audio_ports::{
    AudioPortFlags, AudioPortInfoBuffer, AudioPortType, PluginAudioPorts,
};
use clack_extensions::audio_ports_config::{AudioPortsConfigBuffer, PluginAudioPortsConfig};
use clack_extensions::latency::{HostLatency, HostLatencyImpl, PluginLatency};
use clack_extensions::log::{HostLog, HostLogImpl, LogSeverity};
use clack_extensions::params::{
    HostParams, HostParamsImplMainThread, HostParamsImplShared, ParamClearFlags, ParamInfoBuffer,
    ParamInfoFlags, ParamRescanFlags, PluginParams,
};
use clack_extensions::state::{HostState, HostStateImpl, PluginState};
use clack_extensions::thread_check::{HostThreadCheck, HostThreadCheckImpl};
use clack_host::events::event_types::{ParamValueEvent, TransportEvent, TransportFlags};
use clack_host::events::{EventFlags, EventHeader};
use clack_host::prelude::*;
use clack_host::utils::{BeatTime, SecondsTime};
use cutscore_plugin::params::{STATE_VERSION, STATE_VERSION_KEY};
use cutscore_synth::{SongSpec, render};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

const PLUGIN_ID: &CStr = c"com.cutscore.plugin";
/// Overrides where the plugin library is loaded from.
const PATH_OVERRIDE_VAR: &str = "CUTSCORE_CLAP_PATH";
const RATES: [u32; 3] = [44_100, 48_000, 96_000];
/// How fast the song plays at each rate, in times real time: slowly enough for the analysis to
/// keep up. (Unpaced, the capture ring overflows and the analysis may hear too little of the
/// song to find two bars, depending on the machine; the full-ring path is covered by
/// `tests/realtime.rs`.)
const SPEEDS: [Option<f64>; 3] = [Some(10.0), Some(10.0), Some(10.0)];
const SONG_SECONDS: f64 = 150.0;
const MAX_BLOCK: usize = 4096;
/// Block of silence the host processes while it waits for the scoring workers.
const TAIL_BLOCK: usize = 512;
const CANDIDATES_TIMEOUT: Duration = Duration::from_secs(60);
const POLL_EVERY: Duration = Duration::from_millis(200);
const MONO_SECONDS: usize = 20;
const CYCLES: usize = 100;
/// Threads the process may have gained over the activation cycles (a lazily started pool).
const THREAD_TOLERANCE: usize = 2;
/// The string ids of the parameters the state round trip changes.
const CHANGED_PARAMS: [&str; 3] = ["min_bars", "max_bars", "shown"];
/// Parameters that are editor settings: no automation lanes.
const EDITOR_SETTINGS: [&str; 4] = ["min_bars", "max_bars", "shown", "fit_target"];
/// The states earlier versions saved, in `tests/fixtures/`, and their state versions. Each was
/// saved with [`FIXTURE_VALUES`] set and nothing else changed.
const STATE_FIXTURES: [(&str, u32); 2] = [("state_v0.json", 0), ("state_v1.json", 1)];
/// The parameter values the fixtures were saved with: string id, value as the state stores it
/// (plain), and as the CLAP params extension sets it (stepped parameters count steps from their
/// minimum, the others are normalized to 0..1).
const FIXTURE_VALUES: [(&str, f64, f64); 4] = [
    ("min_bars", 3.0, 2.0),
    ("max_bars", 12.0, 11.0),
    ("shown", 8.0, 7.0),
    ("fit_target", 0.55, 0.5),
];
/// Where to save the fixture values' state (a path), before the fixtures are checked.
const WRITE_FIXTURE_VAR: &str = "CUTSCORE_WRITE_STATE_FIXTURE";
/// A NaN with a payload no passthrough produces by accident: what output buffers hold before
/// `process()`, so an output the plugin never wrote fails the comparison.
const SENTINEL_BITS: u32 = 0x7fa5_a5a5;

// ---------------------------------------------------------------------------------------------
// The host side of the CLAP ABI.

struct TestHost;

impl HostHandlers for TestHost {
    type Shared<'a> = HostShared;
    type MainThread<'a> = HostMain;
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder
            .register::<HostLog>()
            .register::<HostThreadCheck>()
            .register::<HostLatency>()
            .register::<HostParams>()
            .register::<HostState>();
    }
}

/// Thread-safe host data: callback requests and what the plugin logged.
struct HostShared {
    main_thread: ThreadId,
    audio_thread: Mutex<Option<ThreadId>>,
    callback_requested: AtomicBool,
    callbacks_requested: AtomicU32,
    restarts_requested: AtomicU32,
    flushes_requested: AtomicU32,
    errors: Mutex<Vec<String>>,
}

impl HostShared {
    fn new() -> Self {
        Self {
            main_thread: thread::current().id(),
            audio_thread: Mutex::new(None),
            callback_requested: AtomicBool::new(false),
            callbacks_requested: AtomicU32::new(0),
            restarts_requested: AtomicU32::new(0),
            flushes_requested: AtomicU32::new(0),
            errors: Mutex::new(Vec::new()),
        }
    }

    fn set_audio_thread(&self, thread: Option<ThreadId>) {
        *self.audio_thread.lock().unwrap_or_else(|e| e.into_inner()) = thread;
    }
}

impl SharedHandler<'_> for HostShared {
    fn request_restart(&self) {
        self.restarts_requested.fetch_add(1, Ordering::SeqCst);
    }

    fn request_process(&self) {}

    fn request_callback(&self) {
        self.callbacks_requested.fetch_add(1, Ordering::SeqCst);
        self.callback_requested.store(true, Ordering::SeqCst);
    }
}

impl HostLogImpl for HostShared {
    fn log(&self, severity: LogSeverity, message: &str) {
        eprintln!("[plugin log, {severity}] {message}");
        if matches!(
            severity,
            LogSeverity::Error
                | LogSeverity::Fatal
                | LogSeverity::HostMisbehaving
                | LogSeverity::PluginMisbehaving
        ) {
            let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
            errors.push(format!("{severity}: {message}"));
        }
    }
}

impl HostThreadCheckImpl for HostShared {
    fn is_main_thread(&self) -> bool {
        thread::current().id() == self.main_thread
    }

    fn is_audio_thread(&self) -> bool {
        *self.audio_thread.lock().unwrap_or_else(|e| e.into_inner()) == Some(thread::current().id())
    }
}

impl HostParamsImplShared for HostShared {
    fn request_flush(&self) {
        self.flushes_requested.fetch_add(1, Ordering::SeqCst);
    }
}

/// Main-thread host data: counts of the plugin's main-thread notifications.
#[derive(Default)]
struct HostMain {
    latency_changes: Cell<u32>,
    param_rescans: Cell<u32>,
    dirty_marks: Cell<u32>,
}

impl MainThreadHandler<'_> for HostMain {}

impl HostLatencyImpl for HostMain {
    fn changed(&self) {
        self.latency_changes.set(self.latency_changes.get() + 1);
    }
}

impl HostParamsImplMainThread for HostMain {
    fn rescan(&self, _flags: ParamRescanFlags) {
        self.param_rescans.set(self.param_rescans.get() + 1);
    }

    fn clear(&self, _param_id: ClapId, _flags: ParamClearFlags) {}
}

impl HostStateImpl for HostMain {
    fn mark_dirty(&self) {
        self.dirty_marks.set(self.dirty_marks.get() + 1);
    }
}

// ---------------------------------------------------------------------------------------------
// One plugin instance and the extensions the test uses.

struct Plugin {
    instance: PluginInstance<TestHost>,
    state: PluginState,
    ports: PluginAudioPorts,
    ports_config: Option<PluginAudioPortsConfig>,
    latency: Option<PluginLatency>,
    params: PluginParams,
}

impl Plugin {
    fn new(entry: &PluginEntry) -> Self {
        let host_info = HostInfo::new(
            "Cutscore clap_host test",
            "Cutscore",
            "https://example.invalid/cutscore",
            "0.1.0",
        )
        .expect("host info");
        let instance = PluginInstance::<TestHost>::new(
            |_| HostShared::new(),
            |_| HostMain::default(),
            entry,
            PLUGIN_ID,
            &host_info,
        )
        .unwrap_or_else(|e| panic!("could not instantiate {PLUGIN_ID:?}: {e}"));
        let shared = instance.plugin_shared_handle();
        let state = shared
            .get_extension::<PluginState>()
            .expect("the plugin has no CLAP state extension");
        let ports = shared
            .get_extension::<PluginAudioPorts>()
            .expect("the plugin has no CLAP audio-ports extension");
        let params = shared
            .get_extension::<PluginParams>()
            .expect("the plugin has no CLAP params extension");
        let ports_config = shared.get_extension::<PluginAudioPortsConfig>();
        let latency = shared.get_extension::<PluginLatency>();
        Self {
            instance,
            state,
            ports,
            ports_config,
            latency,
            params,
        }
    }

    /// Calls the plugin's `on_main_thread()` if it asked for it.
    fn serve_main_thread(&mut self) {
        let requested = self
            .instance
            .access_shared_handler(|h| h.callback_requested.swap(false, Ordering::SeqCst));
        if requested {
            self.instance.call_on_main_thread_callback();
        }
    }

    fn activate(&mut self, sample_rate: u32) -> StoppedPluginAudioProcessor<TestHost> {
        let config = PluginAudioConfiguration {
            sample_rate: f64::from(sample_rate),
            min_frames_count: 1,
            max_frames_count: MAX_BLOCK as u32,
        };
        self.instance
            .activate(|_, _| (), config)
            .unwrap_or_else(|e| panic!("activation at {sample_rate} Hz failed: {e}"))
    }

    fn deactivate(&mut self, processor: StoppedPluginAudioProcessor<TestHost>) {
        self.instance.deactivate(processor);
        self.serve_main_thread();
    }

    fn latency(&mut self) -> u32 {
        match self.latency {
            Some(latency) => latency.get(&self.instance.plugin_handle()),
            None => 0,
        }
    }

    fn save_state(&mut self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.state
            .save(&self.instance.plugin_handle(), &mut bytes)
            .unwrap_or_else(|e| panic!("saving the state failed: {e:?}"));
        bytes
    }

    fn load_state(&mut self, bytes: &[u8]) {
        let mut reader = bytes;
        self.state
            .load(&self.instance.plugin_handle(), &mut reader)
            .unwrap_or_else(|e| panic!("loading the state failed: {e:?}"));
        self.serve_main_thread();
    }

    /// Channel counts of the main input and output ports, checking there is exactly one of each.
    fn main_port_channels(&mut self) -> (u32, u32) {
        let ports = self.ports;
        let handle = self.instance.plugin_handle();
        let mut channels = [0; 2];
        for (slot, is_input) in [true, false].into_iter().enumerate() {
            let side = if is_input { "input" } else { "output" };
            assert_eq!(
                ports.count(&handle, is_input),
                1,
                "expected exactly one audio {side} port"
            );
            let mut buffer = AudioPortInfoBuffer::new();
            let info = ports
                .get(&handle, 0, is_input, &mut buffer)
                .unwrap_or_else(|| panic!("no info for audio {side} port 0"));
            assert!(
                info.flags.contains(AudioPortFlags::IS_MAIN),
                "audio {side} port 0 is not marked main"
            );
            let expected_type = AudioPortType::from_channel_count(info.channel_count);
            assert_eq!(
                info.port_type, expected_type,
                "audio {side} port type does not match its {} channels",
                info.channel_count
            );
            channels[slot] = info.channel_count;
        }
        (channels[0], channels[1])
    }

    /// Selects the audio-ports configuration with one main input and one main output of
    /// `channels` channels each.
    fn select_layout(&mut self, channels: u32) {
        let config = self
            .ports_config
            .expect("the plugin has no audio-ports-config extension to choose a layout with");
        let handle = self.instance.plugin_handle();
        let mut found = None;
        for index in 0..config.count(&handle) {
            let mut buffer = AudioPortsConfigBuffer::new();
            let Some(c) = config.get(&handle, index, &mut buffer) else {
                continue;
            };
            let main_in = c.main_input.as_ref().map(|p| p.channel_count);
            let main_out = c.main_output.as_ref().map(|p| p.channel_count);
            if main_in == Some(channels)
                && main_out == Some(channels)
                && c.input_port_count == 1
                && c.output_port_count == 1
            {
                found = Some(c.id);
                break;
            }
        }
        let id = found.unwrap_or_else(|| {
            panic!("no audio-ports configuration with {channels} channel(s) in and out")
        });
        config
            .select(&handle, id)
            .unwrap_or_else(|_| panic!("selecting the {channels}-channel configuration failed"));
        assert_eq!(
            self.main_port_channels(),
            (channels, channels),
            "the audio ports do not follow the selected configuration"
        );
    }

    /// CLAP id, range and current value of the parameter with nice-plug string id `id`.
    fn param(&mut self, id: &str) -> (ClapId, f64, f64, f64) {
        let clap_id = nice_plug_param_hash(id);
        let params = self.params;
        let handle = self.instance.plugin_handle();
        for index in 0..params.count(&handle) {
            let mut buffer = ParamInfoBuffer::new();
            let Some(info) = params.get_info(&handle, index, &mut buffer) else {
                continue;
            };
            if info.id.get() == clap_id {
                let value = params
                    .get_value(&handle, info.id)
                    .unwrap_or_else(|| panic!("no value for parameter {id}"));
                return (info.id, info.min_value, info.max_value, value);
            }
        }
        panic!("the plugin has no parameter {id} (CLAP id {clap_id})");
    }

    /// The CLAP flags of the parameter with nice-plug string id `id`.
    fn param_flags(&mut self, id: &str) -> ParamInfoFlags {
        let clap_id = self.param(id).0;
        let params = self.params;
        let handle = self.instance.plugin_handle();
        (0..params.count(&handle))
            .find_map(|index| {
                let mut buffer = ParamInfoBuffer::new();
                let info = params.get_info(&handle, index, &mut buffer)?;
                (info.id == clap_id).then_some(info.flags)
            })
            .unwrap_or_else(|| panic!("no info for parameter {id}"))
    }

    /// Every parameter's CLAP id and current value.
    fn param_values(&mut self) -> Vec<(u32, f64)> {
        let params = self.params;
        let handle = self.instance.plugin_handle();
        (0..params.count(&handle))
            .map(|index| {
                let mut buffer = ParamInfoBuffer::new();
                let info = params
                    .get_info(&handle, index, &mut buffer)
                    .unwrap_or_else(|| panic!("no info for parameter {index}"));
                let id = info.id;
                let value = params
                    .get_value(&handle, id)
                    .unwrap_or_else(|| panic!("no value for parameter {}", id.get()));
                (id.get(), value)
            })
            .collect()
    }

    /// Sets parameters (CLAP id, plain value) through `flush()` while inactive.
    fn set_params(&mut self, values: &[(ClapId, f64)]) {
        let events: Vec<ParamValueEvent> = values
            .iter()
            .map(|&(id, value)| ParamValueEvent::new(0, id, Pckn::match_all(), value))
            .collect();
        let params = self.params;
        let mut handle = self
            .instance
            .inactive_plugin_handle()
            .expect("set_params needs an inactive plugin");
        params.flush(
            &mut handle,
            &InputEvents::from_buffer(&events),
            &mut OutputEvents::void(),
        );
        self.serve_main_thread();
    }

    /// Errors the plugin logged, and notifications a zero-latency passthrough should not send.
    fn check_clean(&self, what: &str) {
        let errors = self
            .instance
            .access_shared_handler(|h| h.errors.lock().unwrap_or_else(|e| e.into_inner()).clone());
        assert!(
            errors.is_empty(),
            "{what}: the plugin logged errors: {errors:#?}"
        );
        let latency_changes = self.instance.access_handler(|h| h.latency_changes.get());
        assert_eq!(
            latency_changes, 0,
            "{what}: the plugin reported a latency change"
        );
        let (callbacks, restarts, flushes) = self.instance.access_shared_handler(|h| {
            (
                h.callbacks_requested.load(Ordering::SeqCst),
                h.restarts_requested.load(Ordering::SeqCst),
                h.flushes_requested.load(Ordering::SeqCst),
            )
        });
        let (rescans, dirty) = self
            .instance
            .access_handler(|h| (h.param_rescans.get(), h.dirty_marks.get()));
        eprintln!(
            "  {what}: {callbacks} main-thread callbacks, {restarts} restart requests, {flushes} \
             flush requests, {rescans} param rescans, {dirty} dirty marks"
        );
    }
}

/// The CLAP parameter id nice-plug derives from a parameter's string id.
fn nice_plug_param_hash(id: &str) -> u32 {
    let hash = id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    hash & !(1 << 31)
}

// ---------------------------------------------------------------------------------------------
// The audio thread.

/// The audio side of one activation: per-channel input and output buffers.
struct AudioIo {
    channels: usize,
    sample_rate: u32,
    /// Whether the transport plays (a DAW playing the song) or is stopped.
    playing: bool,
    inputs: Vec<Vec<f32>>,
    outputs: Vec<Vec<f32>>,
    input_ports: AudioPorts,
    output_ports: AudioPorts,
    steady_time: u64,
    blocks: usize,
    sizes_seen: [bool; 2],
}

impl AudioIo {
    fn new(channels: usize, sample_rate: u32) -> Self {
        Self {
            channels,
            sample_rate,
            playing: true,
            inputs: vec![vec![0.0; MAX_BLOCK]; channels],
            outputs: vec![vec![0.0; MAX_BLOCK]; channels],
            input_ports: AudioPorts::with_capacity(channels, 1),
            output_ports: AudioPorts::with_capacity(channels, 1),
            steady_time: 0,
            blocks: 0,
            sizes_seen: [false; 2],
        }
    }

    /// Processes one block of interleaved frames and checks the output equals the input.
    fn process(
        &mut self,
        processor: &mut StartedPluginAudioProcessor<TestHost>,
        interleaved: &[f32],
    ) -> Result<(), String> {
        let channels = self.channels;
        let frames = interleaved.len() / channels;
        assert!((1..=MAX_BLOCK).contains(&frames) && frames * channels == interleaved.len());
        for (c, input) in self.inputs.iter_mut().enumerate() {
            for (sample, frame) in input[..frames]
                .iter_mut()
                .zip(interleaved.chunks_exact(channels))
            {
                *sample = frame[c];
            }
        }
        for output in &mut self.outputs {
            output[..frames].fill(f32::from_bits(SENTINEL_BITS));
        }
        let transport = self
            .playing
            .then(|| playing_transport(self.steady_time, self.sample_rate));
        let result = {
            let inputs = self.input_ports.with_input_buffers([AudioPortBuffer {
                latency: 0,
                channels: AudioPortBufferType::f32_input_only(
                    self.inputs
                        .iter_mut()
                        .map(|b| InputChannel::variable(&mut b[..frames])),
                ),
            }]);
            let mut outputs = self.output_ports.with_output_buffers([AudioPortBuffer {
                latency: 0,
                channels: AudioPortBufferType::f32_output_only(
                    self.outputs.iter_mut().map(|b| &mut b[..frames]),
                ),
            }]);
            processor.process(
                &inputs,
                &mut outputs,
                &InputEvents::empty(),
                &mut OutputEvents::void(),
                Some(self.steady_time),
                transport.as_ref(),
            )
        };
        if let Err(e) = result {
            return Err(format!(
                "process() failed on a block of {frames} frames at frame {}: {e}",
                self.steady_time
            ));
        }
        for c in 0..channels {
            let input = &self.inputs[c][..frames];
            let output = &self.outputs[c][..frames];
            if let Some(i) = input
                .iter()
                .zip(output)
                .position(|(a, b)| a.to_bits() != b.to_bits())
            {
                return Err(format!(
                    "output differs from input on channel {c} at frame {} (sample {i} of a block \
                     of {frames} frames): in {:?} ({:#010x}), out {:?} ({:#010x})",
                    self.steady_time + i as u64,
                    input[i],
                    input[i].to_bits(),
                    output[i],
                    output[i].to_bits(),
                ));
            }
        }
        self.steady_time += frames as u64;
        self.blocks += 1;
        self.sizes_seen[0] |= frames == 1;
        self.sizes_seen[1] |= frames == MAX_BLOCK;
        Ok(())
    }
}

/// The transport of a playing song at frame `position` (no tempo or beat timeline: finding
/// those is the plugin's job).
fn playing_transport(position: u64, sample_rate: u32) -> TransportEvent {
    TransportEvent {
        header: EventHeader::new_core(0, EventFlags::empty()),
        flags: TransportFlags::IS_PLAYING | TransportFlags::HAS_SECONDS_TIMELINE,
        song_pos_beats: BeatTime::default(),
        song_pos_seconds: SecondsTime::from_float(position as f64 / f64::from(sample_rate)),
        tempo: 0.0,
        tempo_inc: 0.0,
        loop_start_beats: BeatTime::default(),
        loop_end_beats: BeatTime::default(),
        loop_start_seconds: SecondsTime::default(),
        loop_end_seconds: SecondsTime::default(),
        bar_start: BeatTime::default(),
        bar_number: 0,
        time_signature_numerator: 4,
        time_signature_denominator: 4,
    }
}

/// What the audio thread reports back.
struct AudioReport {
    frames: u64,
    blocks: usize,
    saw_1_and_max: bool,
    failure: Option<String>,
    busy: Duration,
}

/// Flags between the test thread and the audio thread.
#[derive(Default)]
struct Control {
    song_done: AtomicBool,
    stop: AtomicBool,
}

/// Sets `stop` when dropped, so a panicking test thread never leaves the audio thread running
/// (the scope would wait for it forever).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A block size from 1 to [`MAX_BLOCK`], with both ends more likely than the rest.
fn block_size(rng: &mut StdRng) -> usize {
    match rng.random_range(0..20) {
        0 => 1,
        1 => MAX_BLOCK,
        _ => rng.random_range(1..=MAX_BLOCK),
    }
}

/// What one activation plays.
#[derive(Clone, Copy)]
struct Playback<'a> {
    /// Interleaved, `channels` wide.
    source: &'a [f32],
    channels: usize,
    sample_rate: u32,
    /// Times real time; `None` plays as fast as the plugin takes it.
    speed: Option<f64>,
    /// Seeds the block sizes.
    seed: u64,
}

/// Runs on the audio thread: starts processing, plays the source in random blocks (first 1,
/// then 4096 frames) with the transport playing, then, with `tail`, silence with the transport
/// stopped, at about real time, until `control.stop`; stops processing and hands the processor
/// back.
fn play(
    processor: StoppedPluginAudioProcessor<TestHost>,
    playback: Playback,
    tail: bool,
    control: &Control,
) -> (StoppedPluginAudioProcessor<TestHost>, AudioReport) {
    let Playback {
        source,
        channels,
        sample_rate,
        speed,
        seed,
    } = playback;
    processor.access_shared_handler(|h| h.set_audio_thread(Some(thread::current().id())));
    let mut report = AudioReport {
        frames: 0,
        blocks: 0,
        saw_1_and_max: false,
        failure: None,
        busy: Duration::ZERO,
    };
    let mut processor = match processor.start_processing() {
        Ok(p) => p,
        Err(e) => {
            report.failure = Some("start_processing() failed".into());
            control.song_done.store(true, Ordering::SeqCst);
            let stopped = e.into_stopped_processor();
            stopped.access_shared_handler(|h| h.set_audio_thread(None));
            return (stopped, report);
        }
    };
    let mut io = AudioIo::new(channels, sample_rate);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut first_sizes = [1, MAX_BLOCK].into_iter();
    let total = source.len() / channels;
    let mut position = 0;
    let started = Instant::now();
    while position < total && !control.stop.load(Ordering::SeqCst) {
        let size = first_sizes.next().unwrap_or_else(|| block_size(&mut rng));
        let frames = size.min(total - position);
        let block = &source[position * channels..(position + frames) * channels];
        if let Err(e) = io.process(&mut processor, block) {
            report.failure = Some(e);
            break;
        }
        position += frames;
        if let Some(speed) = speed {
            let due = Duration::from_secs_f64(position as f64 / f64::from(sample_rate) / speed);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                thread::sleep(wait);
            }
        }
    }
    report.busy = started.elapsed();
    report.saw_1_and_max = io.sizes_seen == [true, true];
    control.song_done.store(true, Ordering::SeqCst);
    if tail {
        io.playing = false;
        let silence = vec![0.0f32; TAIL_BLOCK * channels];
        let pause = Duration::from_secs_f64(TAIL_BLOCK as f64 / f64::from(sample_rate));
        while report.failure.is_none() && !control.stop.load(Ordering::SeqCst) {
            if let Err(e) = io.process(&mut processor, &silence) {
                report.failure = Some(format!("while processing silence after the song: {e}"));
            }
            thread::sleep(pause);
        }
    }
    report.frames = io.steady_time;
    report.blocks = io.blocks;
    let stopped = processor.stop_processing();
    stopped.access_shared_handler(|h| h.set_audio_thread(None));
    (stopped, report)
}

/// Plays `source` on an audio thread while this (main) thread serves the plugin's callbacks.
/// With `poll`, once the source is played, the host keeps processing silence and saves the state
/// every [`POLL_EVERY`] until `poll` accepts one (returns true) or [`CANDIDATES_TIMEOUT`] passes.
/// Deactivates the plugin at the end.
fn run(
    plugin: &mut Plugin,
    playback: Playback,
    mut poll: Option<&mut dyn FnMut(Vec<u8>) -> bool>,
) -> (AudioReport, Duration) {
    let sample_rate = playback.sample_rate;
    let processor = plugin.activate(sample_rate);
    assert_eq!(
        plugin.latency(),
        0,
        "the plugin reports latency at {sample_rate} Hz"
    );
    let control = Control::default();
    let tail = poll.is_some();
    let mut waited = Duration::ZERO;
    let (stopped, report) = thread::scope(|scope| {
        let _stop_guard = StopOnDrop(&control.stop);
        let control = &control;
        let audio = scope.spawn(move || play(processor, playback, tail, control));
        let mut song_end: Option<Instant> = None;
        let mut next_poll = Instant::now();
        while !audio.is_finished() {
            plugin.serve_main_thread();
            if song_end.is_none() && control.song_done.load(Ordering::SeqCst) {
                song_end = Some(Instant::now());
            }
            match (&mut poll, song_end) {
                (Some(poll), Some(end))
                    if !control.stop.load(Ordering::SeqCst) && Instant::now() >= next_poll =>
                {
                    let state = plugin.save_state();
                    if poll(state) || end.elapsed() > CANDIDATES_TIMEOUT {
                        waited = end.elapsed();
                        control.stop.store(true, Ordering::SeqCst);
                    }
                    next_poll = Instant::now() + POLL_EVERY;
                }
                (None, Some(_)) => control.stop.store(true, Ordering::SeqCst),
                _ => {}
            }
            thread::sleep(Duration::from_millis(1));
        }
        audio.join().expect("the audio thread panicked")
    });
    plugin.serve_main_thread();
    plugin.deactivate(stopped);
    (report, waited)
}

// ---------------------------------------------------------------------------------------------
// State.

/// The JSON object of a nice-plug state: an 8-byte little-endian length, then the JSON (a bare
/// JSON object is accepted too).
fn parse_state(bytes: &[u8]) -> Value {
    let json = if bytes.first() == Some(&b'{') {
        bytes
    } else {
        assert!(
            bytes.len() >= 8,
            "state of {} bytes has no length prefix",
            bytes.len()
        );
        let (length, json) = bytes.split_at(8);
        let length = u64::from_le_bytes(length.try_into().unwrap());
        assert_eq!(
            length,
            json.len() as u64,
            "state length prefix does not match its size"
        );
        json
    };
    let state: Value = serde_json::from_slice(json)
        .unwrap_or_else(|e| panic!("state is not JSON ({e}): {}", String::from_utf8_lossy(json)));
    assert!(
        state["params"].is_object(),
        "state has no \"params\" object: {state}"
    );
    assert!(
        state["fields"].is_object(),
        "state has no \"fields\" object: {state}"
    );
    state
}

/// A nice-plug JSON state as the CLAP state extension streams it: its length (8 bytes,
/// little-endian), then the JSON.
fn clap_state(json: &[u8]) -> Vec<u8> {
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json);
    bytes
}

/// The JSON of a state the CLAP state extension saved (without its length).
fn state_json(bytes: &[u8]) -> &[u8] {
    parse_state(bytes);
    if bytes.first() == Some(&b'{') {
        bytes
    } else {
        &bytes[8..]
    }
}

/// A parameter's plain value in a parsed state (`{"i32": 3}`, `{"f32": 0.55}`, `{"bool": true}`).
fn saved_param(state: &Value, id: &str) -> f64 {
    let value = &state["params"][id];
    let plain = value["i32"]
        .as_f64()
        .or_else(|| value["f32"].as_f64())
        .or_else(|| value["bool"].as_bool().map(f64::from));
    plain.unwrap_or_else(|| panic!("the state has no plain value for {id}: {value}"))
}

/// The `summary` field of a state as a JSON object, if the plugin has written one yet. The
/// field's value is a string holding JSON, which may itself be a JSON string holding the object.
fn summary(state: &Value) -> Option<Value> {
    let field = state["fields"].get("summary")?;
    let text = field
        .as_str()
        .unwrap_or_else(|| panic!("the summary field is not a string: {field}"));
    if text.trim().is_empty() {
        return None;
    }
    let mut value: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("the summary field is not JSON ({e}): {text}"));
    if let Value::String(inner) = &value {
        if inner.trim().is_empty() {
            return None;
        }
        value = serde_json::from_str(inner)
            .unwrap_or_else(|e| panic!("the summary field is not JSON ({e}): {inner}"));
    }
    match value {
        Value::Null => None,
        Value::Object(_) => Some(value),
        other => panic!("the summary is not a JSON object: {other}"),
    }
}

fn candidates(summary: &Value) -> u64 {
    summary["candidates"]
        .as_u64()
        .unwrap_or_else(|| panic!("summary has no unsigned \"candidates\": {summary}"))
}

// ---------------------------------------------------------------------------------------------
// The test.

/// The plugin library: [`PATH_OVERRIDE_VAR`] if set, else the newer of
/// `target/<profile>/deps/` (where `cargo test` rebuilds it as this test's dependency; it does
/// not copy it up) and `target/<profile>/` (where `cargo build -p cutscore-plugin` puts it).
fn plugin_path() -> PathBuf {
    if let Some(path) = std::env::var_os(PATH_OVERRIDE_VAR) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{PATH_OVERRIDE_VAR} points at {}, which is not a file",
            path.display()
        );
        return path;
    }
    let exe = std::env::current_exe().expect("path of the test binary");
    // target/<profile>/deps/clap_host-<hash>
    let deps_dir = exe.parent().expect("the test binary has no folder");
    let profile_dir = deps_dir
        .parent()
        .expect("the test binary is not in target/<profile>/deps/");
    let name = format!(
        "{}cutscore_plugin{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let candidates = [deps_dir.join(&name), profile_dir.join(&name)];
    let newest = candidates
        .iter()
        .filter_map(|path| {
            let modified = std::fs::metadata(path).ok()?.modified().ok()?;
            Some((modified, path))
        })
        .max_by_key(|&(modified, _)| modified)
        .map(|(_, path)| path.clone());
    newest.unwrap_or_else(|| {
        panic!(
            "{} not found: build the `cutscore-plugin` package first (`cargo build -p \
             cutscore-plugin`, with the same profile as this test), or set {PATH_OVERRIDE_VAR} to \
             the plugin library",
            candidates[1].display()
        )
    })
}

/// The song for one rate, interleaved stereo.
fn song(seed: u64, sample_rate: u32) -> Vec<f32> {
    let mut spec = SongSpec::random(seed);
    spec.sample_rate = sample_rate;
    spec.bars = spec.bars_for_seconds(SONG_SECONDS);
    let started = Instant::now();
    let song = render(&spec).unwrap_or_else(|e| panic!("rendering {spec:?} failed: {e}"));
    assert_eq!(song.channels, 2);
    assert_eq!(song.sample_rate, sample_rate);
    eprintln!(
        "  rendered {:.1} s at {sample_rate} Hz ({} BPM, {}/4, seed {seed}) in {:.1} s",
        song.samples.len() as f64 / 2.0 / f64::from(sample_rate),
        spec.bpm,
        spec.meter,
        started.elapsed().as_secs_f64()
    );
    song.samples
}

fn threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// One rate: bit-exact passthrough of the song, candidates appearing, state save and restore.
fn check_rate(
    entry: &PluginEntry,
    sample_rate: u32,
    speed: Option<f64>,
    seed: u64,
    source: &[f32],
) {
    let started = Instant::now();
    let mut plugin = Plugin::new(entry);
    assert_eq!(
        plugin.main_port_channels(),
        (2, 2),
        "the default layout is not stereo in, stereo out"
    );
    let fresh = parse_state(&plugin.save_state());
    for id in CHANGED_PARAMS {
        assert!(
            fresh["params"].get(id).is_some(),
            "the state has no parameter {id}: {fresh}"
        );
    }
    if let Some(s) = summary(&fresh) {
        assert_eq!(
            candidates(&s),
            0,
            "a fresh instance already reports candidates: {s}"
        );
    }

    let mut polls = 0;
    let mut found: Option<(Vec<u8>, Value)> = None;
    let mut poll = |bytes: Vec<u8>| {
        polls += 1;
        let state = parse_state(&bytes);
        match summary(&state) {
            Some(s) if candidates(&s) > 0 => {
                found = Some((bytes, s));
                true
            }
            _ => false,
        }
    };
    let playback = Playback {
        source,
        channels: 2,
        sample_rate,
        speed,
        seed,
    };
    let (report, waited) = run(&mut plugin, playback, Some(&mut poll));
    if let Some(failure) = &report.failure {
        panic!("{sample_rate} Hz: {failure}");
    }
    let song_frames = (source.len() / 2) as u64;
    assert!(
        report.frames >= song_frames,
        "{sample_rate} Hz: not all of the song was played"
    );
    assert!(
        report.saw_1_and_max,
        "{sample_rate} Hz: blocks of 1 and {MAX_BLOCK} were not both played"
    );
    eprintln!(
        "  {sample_rate} Hz: {} frames in {} blocks bit-exact; song processed in {:.1} s ({:.0}x \
         real time); waited {:.1} s ({polls} state saves) for candidates",
        report.frames,
        report.blocks,
        report.busy.as_secs_f64(),
        song_frames as f64 / f64::from(sample_rate) / report.busy.as_secs_f64(),
        waited.as_secs_f64()
    );
    let (first_bytes, first_summary) = found.unwrap_or_else(|| {
        panic!(
            "{sample_rate} Hz: no scored candidates in the state summary {} s after the song",
            CANDIDATES_TIMEOUT.as_secs()
        )
    });
    eprintln!("  {sample_rate} Hz summary: {first_summary}");
    for key in ["beats", "bars", "candidates"] {
        assert!(
            first_summary[key].as_u64().is_some_and(|n| n > 0),
            "{sample_rate} Hz: summary {key} is not a positive integer after a 150 s song: {first_summary}"
        );
    }
    for key in ["tempo_bpm", "best_score"] {
        assert!(
            first_summary[key].as_f64().is_some_and(f64::is_finite),
            "{sample_rate} Hz: summary {key} is not a finite number: {first_summary}"
        );
    }
    assert!(
        first_summary["tempo_bpm"]
            .as_f64()
            .is_some_and(|bpm| bpm > 0.0),
        "{sample_rate} Hz: summary tempo is not positive: {first_summary}"
    );
    let first = parse_state(&first_bytes);

    // Change three parameters, save, restore into a fresh instance, save again.
    let mut changes = Vec::new();
    for id in CHANGED_PARAMS {
        let (clap_id, min, max, value) = plugin.param(id);
        let value = value.round();
        let new = if value + 1.0 <= max {
            value + 1.0
        } else {
            value - 1.0
        };
        assert!(new >= min, "parameter {id} has a range of one value");
        changes.push((clap_id, new));
    }
    plugin.set_params(&changes);
    for (&id, &(clap_id, new)) in CHANGED_PARAMS.iter().zip(&changes) {
        // nice-plug reports stepped values as f32 normalized values times the step count.
        let now = plugin.param(id).3;
        assert!(
            (now - new).abs() < 1e-3,
            "setting {id} (CLAP id {}) to {new} through flush() left it at {now}",
            clap_id.get()
        );
    }
    let saved_bytes = plugin.save_state();
    let saved = parse_state(&saved_bytes);
    for id in CHANGED_PARAMS {
        assert_ne!(
            saved["params"][id], first["params"][id],
            "{sample_rate} Hz: changing {id} did not change it in the saved state"
        );
    }
    // The workers may have scored more between the poll and the deactivation.
    let saved_summary = summary(&saved);
    assert!(
        saved_summary.as_ref().is_some_and(|s| candidates(s) > 0),
        "{sample_rate} Hz: the summary lost its candidates after deactivation: {saved_summary:?}"
    );
    let values = plugin.param_values();
    plugin.check_clean(&format!("{sample_rate} Hz instance"));
    drop(plugin);

    let mut restored = Plugin::new(entry);
    restored.load_state(&saved_bytes);
    let resaved = parse_state(&restored.save_state());
    assert_eq!(
        resaved["params"], saved["params"],
        "{sample_rate} Hz: parameters did not survive a state save and load"
    );
    assert_eq!(
        resaved["fields"], saved["fields"],
        "{sample_rate} Hz: persisted fields did not survive a state save and load"
    );
    assert_eq!(
        restored.param_values(),
        values,
        "{sample_rate} Hz: parameter values differ after a state save and load"
    );
    // The restored instance processes too.
    let one_second = &source[..(sample_rate as usize * 2).min(source.len())];
    let playback = Playback {
        source: one_second,
        channels: 2,
        sample_rate,
        speed: None,
        seed: seed ^ 1,
    };
    let (report, _) = run(&mut restored, playback, None);
    if let Some(failure) = &report.failure {
        panic!("{sample_rate} Hz, restored instance: {failure}");
    }
    restored.check_clean(&format!("{sample_rate} Hz restored instance"));
    eprintln!(
        "  {sample_rate} Hz done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The editor settings are not automatable; bypass is the host's bypass, and automatable.
fn check_param_flags(entry: &PluginEntry) {
    let mut plugin = Plugin::new(entry);
    for id in EDITOR_SETTINGS {
        let flags = plugin.param_flags(id);
        assert!(
            !flags.intersects(ParamInfoFlags::IS_AUTOMATABLE | ParamInfoFlags::IS_MODULATABLE),
            "{id} is an editor setting but its CLAP flags allow automation: {flags:?}"
        );
        assert!(
            !flags.contains(ParamInfoFlags::IS_BYPASS),
            "{id}: {flags:?}"
        );
    }
    let flags = plugin.param_flags("bypass");
    assert!(
        flags.contains(ParamInfoFlags::IS_BYPASS | ParamInfoFlags::IS_AUTOMATABLE),
        "bypass is not flagged as an automatable bypass: {flags:?}"
    );
    plugin.check_clean("parameter flags instance");
}

/// With [`WRITE_FIXTURE_VAR`] set, saves the state of a fresh instance with [`FIXTURE_VALUES`]
/// there (the JSON only, as [`STATE_FIXTURES`] are).
fn write_state_fixture(entry: &PluginEntry) {
    let Some(path) = std::env::var_os(WRITE_FIXTURE_VAR) else {
        return;
    };
    let mut plugin = Plugin::new(entry);
    let changes: Vec<(ClapId, f64)> = FIXTURE_VALUES
        .iter()
        .map(|&(id, _, clap_value)| (plugin.param(id).0, clap_value))
        .collect();
    plugin.set_params(&changes);
    let bytes = plugin.save_state();
    std::fs::write(&path, state_json(&bytes))
        .unwrap_or_else(|e| panic!("could not write {}: {e}", path.to_string_lossy()));
    eprintln!("  wrote the fixture state to {}", path.to_string_lossy());
}

/// Every committed fixture state loads into a fresh instance that is bypassed: afterwards it
/// holds [`FIXTURE_VALUES`], is not bypassed (no fixture was saved bypassed) and saves
/// [`STATE_VERSION`].
fn check_state_fixtures(entry: &PluginEntry) {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let defaults = parse_state(&Plugin::new(entry).save_state());
    for (id, plain, _) in FIXTURE_VALUES {
        assert!(
            (saved_param(&defaults, id) - plain).abs() > 1e-3,
            "{id} is {plain} by default: the fixtures would not show it was loaded"
        );
    }
    for (name, version) in STATE_FIXTURES {
        let path = folder.join(name);
        let json = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("could not read {}: {e}", path.display()));
        let fixture = parse_state(&json);
        let saved_version = fixture["fields"]
            .get(STATE_VERSION_KEY)
            .map(|v| v.as_str().and_then(|v| v.parse::<u32>().ok()));
        assert_eq!(
            saved_version.unwrap_or(Some(0)),
            Some(version),
            "{name} is not a version {version} state"
        );

        let mut plugin = Plugin::new(entry);
        let bypass = plugin.param("bypass").0;
        plugin.set_params(&[(bypass, 1.0)]);
        assert_eq!(plugin.param("bypass").3, 1.0, "setting bypass failed");
        plugin.load_state(&clap_state(&json));
        let loaded = parse_state(&plugin.save_state());
        for (id, plain, _) in FIXTURE_VALUES {
            let value = saved_param(&loaded, id);
            assert!(
                (value - plain).abs() < 1e-3,
                "{name}: {id} is {value} after loading, not {plain}"
            );
        }
        assert_eq!(
            plugin.param("bypass").3,
            0.0,
            "{name}: a state saved unbypassed left the instance bypassed"
        );
        assert_eq!(
            loaded["fields"][STATE_VERSION_KEY].as_str(),
            Some(STATE_VERSION.to_string().as_str()),
            "{name}: the loaded instance does not save the current state version"
        );
        assert_eq!(
            loaded["fields"]["window_size"], fixture["fields"]["window_size"],
            "{name}: the window size did not come back"
        );
        plugin.check_clean(&format!("{name} instance"));
    }
    eprintln!("  {} fixture states load", STATE_FIXTURES.len());
}

/// The mono layout passes audio bit-exactly.
fn check_mono(entry: &PluginEntry, stereo_48k: &[f32]) {
    let mut plugin = Plugin::new(entry);
    plugin.select_layout(1);
    let frames = (MONO_SECONDS * 48_000).min(stereo_48k.len() / 2);
    let mono: Vec<f32> = stereo_48k[..frames * 2]
        .chunks_exact(2)
        .map(|f| 0.5 * (f[0] + f[1]))
        .collect();
    let playback = Playback {
        source: &mono,
        channels: 1,
        sample_rate: 48_000,
        speed: None,
        seed: 7,
    };
    let (report, _) = run(&mut plugin, playback, None);
    if let Some(failure) = &report.failure {
        panic!("mono: {failure}");
    }
    assert_eq!(
        report.frames, frames as u64,
        "mono: not all frames were played"
    );
    eprintln!(
        "  mono: {} frames in {} blocks bit-exact",
        report.frames, report.blocks
    );
    plugin.check_clean("mono instance");
}

/// Many activate / process / deactivate cycles leave no threads behind.
fn check_cycles(entry: &PluginEntry, stereo: &[f32]) {
    let started = Instant::now();
    let mono: Vec<f32> = stereo.chunks_exact(2).map(|f| f[0]).collect();
    let mut plugin = Plugin::new(entry);
    let mut rng = StdRng::seed_from_u64(0xc1c1e);
    let cycle = |plugin: &mut Plugin, i: usize, rng: &mut StdRng| {
        let channels = if i.is_multiple_of(2) { 2 } else { 1 };
        plugin.select_layout(channels as u32);
        let source: &[f32] = if channels == 2 { stereo } else { &mono };
        let frames = 3 * MAX_BLOCK;
        let start = rng.random_range(0..source.len() / channels - frames);
        let block = &source[start * channels..(start + frames) * channels];
        let rate = RATES[i % RATES.len()];
        let playback = Playback {
            source: block,
            channels,
            sample_rate: rate,
            speed: None,
            seed: rng.random(),
        };
        let (report, _) = run(plugin, playback, None);
        if let Some(failure) = &report.failure {
            panic!("activation cycle {i} ({channels} channels, {rate} Hz): {failure}");
        }
    };
    // One warm-up cycle, so that lazily started, process-wide threads count as "before".
    cycle(&mut plugin, 0, &mut rng);
    thread::sleep(Duration::from_millis(500));
    let before = threads();
    for i in 1..=CYCLES {
        cycle(&mut plugin, i, &mut rng);
    }
    plugin.select_layout(2);
    plugin.check_clean("activation cycles instance");
    if let Some(before) = before {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut after = threads().expect("thread count");
        while after > before + THREAD_TOLERANCE && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(100));
            after = threads().expect("thread count");
        }
        eprintln!("  threads before the cycles: {before}, after: {after}");
        assert!(
            after <= before + THREAD_TOLERANCE,
            "{CYCLES} activation cycles grew the process from {before} to {after} threads"
        );
    }
    eprintln!(
        "  {CYCLES} activate/process/deactivate cycles in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn clap_host_drives_the_plugin() {
    let started = Instant::now();
    let path = plugin_path();
    eprintln!("loading {}", path.display());
    // SAFETY: loading a CLAP library runs its code; this is the plugin under test.
    let entry = unsafe { PluginEntry::load(&path) }
        .unwrap_or_else(|e| panic!("could not load {}: {e}", path.display()));
    let factory = entry
        .get_plugin_factory()
        .expect("the library has no CLAP plugin factory");
    let ids: Vec<String> = factory
        .plugin_descriptors()
        .filter_map(|d| d.id().map(|id| id.to_string_lossy().into_owned()))
        .collect();
    assert!(
        ids.iter().any(|id| id.as_bytes() == PLUGIN_ID.to_bytes()),
        "the factory does not list {PLUGIN_ID:?}, only {ids:?}"
    );

    write_state_fixture(&entry);
    check_param_flags(&entry);
    check_state_fixtures(&entry);

    let mut song_48k = Vec::new();
    for (i, (&rate, &speed)) in RATES.iter().zip(&SPEEDS).enumerate() {
        let seed = 0xc075_c0de + i as u64;
        let source = song(seed, rate);
        check_rate(&entry, rate, speed, seed, &source);
        if rate == 48_000 {
            song_48k = source;
        }
    }
    check_mono(&entry, &song_48k);
    check_cycles(&entry, &song_48k);

    // Never unload the library: the plugin's threads or thread-local destructors may outlive
    // the last instance, and unloading code under them would crash the test process at exit.
    std::mem::forget(entry);
    eprintln!(
        "all checks passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
