//! Live microphone capture through cpal (feature `mic`).
//!
//! The device runs at its own default configuration (any rate, channel count and
//! sample format); the audio callback only converts to `f32` and hands the samples to
//! a [`LiveFeed`], which mixes down to mono without blocking or allocating. Resampling
//! to the model rate happens on the worker side, in [`LiveSource`].
//!
//! With the default host on Linux (ALSA, usually routed to PulseAudio or PipeWire by
//! the `default` PCM) the driver's default buffer can be seconds long, so a small
//! fixed period (about 40 ms) is requested, falling back to the default when the
//! device refuses it.

use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{
    BufferSize, ErrorKind, FromSample, SampleFormat, SizedSample, StreamConfig, SupportedBufferSize,
};

use super::AudioError;
use super::live::{LiveFeed, LiveSource, channel};

/// Period asked of the device, in milliseconds.
const PERIOD_MS: u32 = 40;
/// How long the backend may take to set a stream up.
const BUILD_TIMEOUT: Duration = Duration::from_secs(5);

/// alsa-lib prints its own diagnostics straight to stderr ("ALSA lib pcm.c:2666:
/// (snd_pcm_open_noupdate) Unknown PCM default", "PulseAudio: Unable to connect"...)
/// before returning the error that cpal reports and we turn into one line. While
/// devices are listed or opened, a thread-local handler drops them; set
/// `SPIKEWORD_ALSA_DEBUG=1` to see them.
#[cfg(target_os = "linux")]
mod quiet_alsa {
    use std::ffi::{c_char, c_int, c_void};

    // The local handler takes the va_list as an argument (not `...`), so it can be
    // written in Rust; it ignores all its arguments.
    type LocalHandler = Option<
        unsafe extern "C" fn(
            *const c_char,
            c_int,
            *const c_char,
            c_int,
            *const c_char,
            *mut c_void,
        ),
    >;

    // libasound is linked already (cpal -> alsa-sys).
    unsafe extern "C" {
        fn snd_lib_error_set_local(func: LocalHandler) -> LocalHandler;
    }

    unsafe extern "C" fn ignore(
        _: *const c_char,
        _: c_int,
        _: *const c_char,
        _: c_int,
        _: *const c_char,
        _: *mut c_void,
    ) {
    }

    /// Restores the previous handler of this thread when dropped.
    pub struct Quiet(LocalHandler);

    pub fn quiet() -> Option<Quiet> {
        if std::env::var_os("SPIKEWORD_ALSA_DEBUG").is_some_and(|v| v != "0") {
            return None;
        }
        // SAFETY: sets a thread-local function pointer in alsa-lib; `ignore` has the
        // handler's signature and touches none of its arguments.
        Some(Quiet(unsafe { snd_lib_error_set_local(Some(ignore)) }))
    }

    impl Drop for Quiet {
        fn drop(&mut self) {
            // SAFETY: puts back what was there before.
            unsafe {
                snd_lib_error_set_local(self.0);
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod quiet_alsa {
    pub fn quiet() -> Option<()> {
        None
    }
}

fn dev_err(msg: impl Into<String>) -> AudioError {
    // AudioError prints as one line; some backend messages carry newlines.
    AudioError::Device(msg.into().replace('\n', " "))
}

/// The backend's identifier for a device (the ALSA PCM name, e.g. `default`, `pulse`,
/// `hw:CARD=0,DEV=0`), if it has one.
fn device_id(d: &cpal::Device) -> Option<String> {
    d.id().ok().map(|id| id.id().to_string())
}

/// The human-readable name of a device (first line of its description).
fn device_name(d: &cpal::Device) -> Option<String> {
    d.description().ok().map(|desc| desc.name().to_string())
}

/// How a device is shown to people: `id: name`, or whichever of the two is known.
fn label(d: &cpal::Device) -> String {
    match (device_id(d), device_name(d)) {
        (Some(id), Some(name)) if id != name => format!("{id}: {name}"),
        (Some(id), _) => id,
        (None, Some(name)) => name,
        (None, None) => "(unnamed device)".to_string(),
    }
}

/// Names of the input devices of the default host; the default one is marked
/// with the suffix " (default)".
pub fn list_devices() -> Result<Vec<String>, AudioError> {
    let _quiet = quiet_alsa::quiet();
    let host = cpal::default_host();
    let default_id = host.default_input_device().and_then(|d| device_id(&d));
    let devices = host
        .input_devices()
        .map_err(|e| dev_err(format!("cannot list input devices: {e}")))?;
    let mut out: Vec<String> = Vec::new();
    let mut saw_default = false;
    for d in devices {
        let is_default = default_id.is_some() && device_id(&d) == default_id;
        saw_default |= is_default;
        let mut l = label(&d);
        if is_default {
            l.push_str(" (default)");
        }
        out.push(l);
    }
    if !saw_default && let Some(d) = host.default_input_device() {
        // Some hosts have a default that enumeration does not list.
        out.insert(0, format!("{} (default)", label(&d)));
    }
    Ok(out)
}

/// Finds the default input device, or the first input device whose id or name
/// contains `wanted`.
fn find_device(host: &cpal::Host, wanted: Option<&str>) -> Result<cpal::Device, AudioError> {
    let Some(wanted) = wanted else {
        return host
            .default_input_device()
            .ok_or_else(|| dev_err("no input device found (is a microphone connected?)"));
    };
    let devices = host
        .input_devices()
        .map_err(|e| dev_err(format!("cannot list input devices: {e}")))?;
    let mut devices: Vec<cpal::Device> = devices.collect();
    // An exact id match wins (`--device pulse` must not pick `pulse_monitor`), then
    // the first id or name that contains the text.
    if let Some(i) = devices
        .iter()
        .position(|d| device_id(d).as_deref() == Some(wanted))
    {
        return Ok(devices.swap_remove(i));
    }
    devices
        .into_iter()
        .find(|d| label(d).contains(wanted))
        .ok_or_else(|| {
            dev_err(format!(
                "no input device matches \"{wanted}\" (see `listen --list-devices`)"
            ))
        })
}

/// The fixed period to ask for, in frames: about 40 ms at the device rate, clamped
/// into the supported range when the device reports one.
fn period_frames(native_rate: u32, supported: &SupportedBufferSize) -> u32 {
    let want = (native_rate / 1000 * PERIOD_MS).max(64);
    match *supported {
        SupportedBufferSize::Range { min, max } if min <= max && max > 0 => {
            want.clamp(min.max(1), max)
        }
        _ => want,
    }
}

/// A sample of any device format as `f32` in [-1, 1] (unsigned formats are
/// offset-binary: their midpoint is silence).
#[inline]
fn to_f32<T: SizedSample>(s: T) -> f32
where
    f32: FromSample<T>,
{
    s.to_sample::<f32>()
}

/// Builds an input stream whose callback converts samples of type `T` to `f32`
/// and hands them to `feed`.
fn build<T>(
    device: &cpal::Device,
    config: StreamConfig,
    feed: LiveFeed,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = config.channels as usize;
    let err_feed = feed.clone();
    device.build_input_stream::<T, _, _>(
        config,
        move |data: &[T], _: &cpal::InputCallbackInfo| {
            feed.push_interleaved(data, channels, to_f32::<T>)
        },
        move |e: cpal::Error| match e.kind() {
            // Transient: the backend recovers (ALSA re-prepares after an xrun) and the
            // stream keeps running; lost audio shows up as a gap, not as a failure.
            ErrorKind::Xrun | ErrorKind::DeviceChanged | ErrorKind::RealtimeDenied => {}
            _ => err_feed.fail(e.to_string().replace('\n', " ")),
        },
        Some(BUILD_TIMEOUT),
    )
}

fn build_any(
    device: &cpal::Device,
    format: SampleFormat,
    config: StreamConfig,
    feed: LiveFeed,
) -> Result<cpal::Stream, AudioError> {
    let r = match format {
        SampleFormat::F32 => build::<f32>(device, config, feed),
        SampleFormat::F64 => build::<f64>(device, config, feed),
        SampleFormat::I8 => build::<i8>(device, config, feed),
        SampleFormat::I16 => build::<i16>(device, config, feed),
        SampleFormat::I24 => build::<cpal::I24>(device, config, feed),
        SampleFormat::I32 => build::<i32>(device, config, feed),
        SampleFormat::I64 => build::<i64>(device, config, feed),
        SampleFormat::U8 => build::<u8>(device, config, feed),
        SampleFormat::U16 => build::<u16>(device, config, feed),
        SampleFormat::U24 => build::<cpal::U24>(device, config, feed),
        SampleFormat::U32 => build::<u32>(device, config, feed),
        SampleFormat::U64 => build::<u64>(device, config, feed),
        other => return Err(dev_err(format!("unsupported sample format {other}"))),
    };
    r.map_err(|e| dev_err(e.to_string()))
}

/// Keeps the cpal stream (and so the capture) running for as long as the source lives.
struct StreamGuard(#[allow(dead_code)] cpal::Stream);

/// Opens the default input device, or the first whose name contains `device`, at its
/// default configuration, and starts capturing; the source yields mono audio at `rate`.
pub fn open(device: Option<&str>, rate: u32) -> Result<LiveSource, AudioError> {
    let _quiet = quiet_alsa::quiet();
    let host = cpal::default_host();
    let dev = find_device(&host, device)?;
    let name = label(&dev);
    let supported = dev
        .default_input_config()
        .map_err(|e| {
            dev_err(format!(
                "cannot open input device \"{name}\": {} (is a microphone connected and the sound server running?)",
                e.to_string().trim_end_matches('.')
            ))
        })?;
    let native_rate = supported.sample_rate();
    if native_rate == 0 || supported.channels() == 0 {
        return Err(dev_err(format!(
            "input device \"{name}\" reports an unusable configuration ({native_rate} Hz, {} channels)",
            supported.channels()
        )));
    }
    let format = supported.sample_format();
    let mut config = supported.config();

    let (feed, mut live) = channel(native_rate, rate)?;
    config.buffer_size = BufferSize::Fixed(period_frames(native_rate, supported.buffer_size()));
    let stream = match build_any(&dev, format, config, feed.clone()) {
        Ok(s) => s,
        Err(_) => {
            // The device refused the small period: take its default.
            config.buffer_size = BufferSize::Default;
            build_any(&dev, format, config, feed)
                .map_err(|e| dev_err(format!("cannot start input device \"{name}\": {e}")))?
        }
    };
    stream
        .play()
        .map_err(|e| dev_err(format!("cannot start input device \"{name}\": {e}")))?;
    live.keep_alive(Box::new(StreamGuard(stream)));
    Ok(live)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_is_about_40ms_and_respects_the_range() {
        assert_eq!(period_frames(48000, &SupportedBufferSize::Unknown), 1920);
        assert_eq!(
            period_frames(16000, &SupportedBufferSize::Range { min: 32, max: 4096 }),
            640
        );
        assert_eq!(
            period_frames(48000, &SupportedBufferSize::Range { min: 32, max: 1024 }),
            1024
        );
        assert_eq!(
            period_frames(
                8000,
                &SupportedBufferSize::Range {
                    min: 512,
                    max: 8192
                }
            ),
            512
        );
    }

    #[test]
    fn every_integer_format_maps_to_unit_range() {
        let close = |a: f32, b: f32| (a - b).abs() < 1e-3;
        assert!(close(to_f32(0.25f32), 0.25));
        assert!(close(to_f32(-0.5f64), -0.5));
        assert!(
            close(to_f32(i16::MIN), -1.0)
                && close(to_f32(0i16), 0.0)
                && close(to_f32(16384i16), 0.5)
        );
        assert!(
            close(to_f32(i32::MIN), -1.0)
                && close(to_f32(i32::MAX), 1.0)
                && close(to_f32(0i32), 0.0)
        );
        assert!(
            close(to_f32(0u16), -1.0)
                && close(to_f32(32768u16), 0.0)
                && close(to_f32(u16::MAX), 1.0)
        );
        assert!(close(to_f32(0u8), -1.0) && close(to_f32(128u8), 0.0) && close(to_f32(192u8), 0.5));
        assert!(close(to_f32(i8::MIN), -1.0));
        assert!(close(to_f32(cpal::I24::new(1 << 22).unwrap()), 0.5));
    }

    #[test]
    fn missing_device_is_a_one_line_error() {
        let e = open(Some("no-such-device-xyz-\u{2603}"), 16000)
            .err()
            .expect("must not open");
        let s = e.to_string();
        assert!(!s.contains('\n'), "{s}");
        assert!(s.starts_with("audio device:"), "{s}");
    }
}
