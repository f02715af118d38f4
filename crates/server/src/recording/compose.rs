//! `meeting-service recording compose <recordingId>`: one file to watch, made by the
//! system's `ffmpeg` (Debian's package; the server records without it). Every video
//! track becomes a tile of a grid and every audio track is mixed in, each placed at its
//! `startMs` on the manifest's clock, for the recording's whole span.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::library::COMPOSED;
use super::manifest::Manifest;

/// One tile of the grid.
const TILE: (u32, u32) = (640, 360);
/// Frames per second of the composed video.
const FPS: u32 = 15;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("no recording {0} under RECORDINGS_DIR")]
    NotFound(String),
    #[error("the recording's manifest cannot be read")]
    Manifest,
    #[error("the recording has no track")]
    Empty,
    #[error("ffmpeg could not be run ({0}); install it (Debian: apt-get install ffmpeg)")]
    NoFfmpeg(std::io::Error),
    #[error("ffmpeg failed: {0}")]
    Failed(String),
}

/// The recording directory of `id`, looked for under every meeting's directory.
pub fn find(root: &Path, id: &str) -> Result<PathBuf, ComposeError> {
    if !super::is_recording_id(id) {
        return Err(ComposeError::NotFound(id.to_owned()));
    }
    let rooms = std::fs::read_dir(root).map_err(|_| ComposeError::NotFound(id.to_owned()))?;
    rooms
        .filter_map(Result::ok)
        .map(|e| e.path().join(id))
        .find(|d| d.join(super::MANIFEST).is_file())
        .ok_or_else(|| ComposeError::NotFound(id.to_owned()))
}

/// One of the two passes of a composition: ffmpeg 5.1 gave the mixed audio runs of
/// equal timestamps when it ran in one graph with a grid whose tile started late (a
/// late joiner), so video and audio are made apart and then put in one file as they
/// are (`-c copy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Video,
    Audio,
}

/// The ffmpeg arguments that make `part` of the composition of `m` (files in `dir`)
/// into `out`.
pub fn ffmpeg_args(
    m: &Manifest,
    dir: &Path,
    out: &Path,
    part: Part,
) -> Result<Vec<String>, ComposeError> {
    let span_ms = m
        .stopped_ms
        .unwrap_or_else(|| m.tracks.iter().map(|t| t.stop_ms).fold(0.0, f64::max));
    let span = (span_ms / 1000.0).max(0.1);
    let mut args: Vec<String> = ["-y", "-nostdin", "-v", "error"].map(String::from).to_vec();
    let (mut vf, mut af) = (Vec::new(), Vec::new());
    let (mut videos, mut audios) = (Vec::new(), Vec::new());
    for (i, t) in m.tracks.iter().enumerate() {
        let start = (t.start_ms / 1000.0).max(0.0);
        if t.kind != "video" {
            // Audio is placed by the input's offset and its start filled with silence
            // (`aresample async`): `adelay` before `amix` made runs of equal timestamps
            // when a track started late (a late joiner's microphone).
            args.extend(["-itsoffset".into(), format!("{start:.3}")]);
        }
        args.extend(["-i".into(), dir.join(&t.file).display().to_string()]);
        if t.kind == "video" {
            let (w, h) = TILE;
            vf.push(format!(
                "[{i}:v]fps={FPS},scale={w}:{h}:force_original_aspect_ratio=decrease,\
                 pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p,\
                 tpad=start_duration={start:.3}:stop_mode=clone:stop_duration={span:.3}[v{i}]"
            ));
            videos.push(format!("[v{i}]"));
        } else {
            af.push(format!(
                "[{i}:a]aresample=48000:async=1:first_pts=0,apad[a{i}]"
            ));
            audios.push(format!("[a{i}]"));
        }
    }
    if videos.is_empty() && audios.is_empty() {
        return Err(ComposeError::Empty);
    }
    let n = m.tracks.len();
    if videos.is_empty() {
        let (w, h) = TILE;
        args.extend([
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!("color=c=black:s={w}x{h}:r={FPS}"),
        ]);
        vf.push(format!("[{n}:v]format=yuv420p[vout]"));
    } else if videos.len() == 1 {
        vf.push(format!("{}null[vout]", videos[0]));
    } else {
        let cols = (videos.len() as f64).sqrt().ceil() as usize;
        let layout: Vec<String> = (0..videos.len())
            .map(|k| {
                format!(
                    "{}_{}",
                    (k % cols) as u32 * TILE.0,
                    (k / cols) as u32 * TILE.1
                )
            })
            .collect();
        vf.push(format!(
            "{}xstack=inputs={}:layout={}:fill=black[vout]",
            videos.concat(),
            videos.len(),
            layout.join("|")
        ));
    }
    if audios.is_empty() {
        let k = n + usize::from(videos.is_empty());
        args.extend([
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            "anullsrc=r=48000:cl=stereo".into(),
        ]);
        af.push(format!("[{k}:a]anull[aout]"));
    } else if audios.len() == 1 {
        af.push(format!("{}anull[aout]", audios[0]));
    } else {
        af.push(format!(
            "{}amix=inputs={}:duration=longest:normalize=0[aout]",
            audios.concat(),
            audios.len()
        ));
    }
    let (filters, label, codec): (Vec<String>, &str, &[&str]) = match part {
        Part::Video => (
            vf,
            "[vout]",
            &[
                "-an",
                "-c:v",
                "libvpx",
                "-b:v",
                "1M",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
            ],
        ),
        Part::Audio => (af, "[aout]", &["-vn", "-c:a", "libopus", "-b:a", "64k"]),
    };
    args.extend([
        "-filter_complex".into(),
        filters.join(";"),
        "-map".into(),
        label.into(),
        "-t".into(),
        format!("{span:.3}"),
    ]);
    args.extend(codec.iter().map(|a| (*a).to_owned()));
    args.extend(["-f".into(), "webm".into(), out.display().to_string()]);
    Ok(args)
}

/// Compose the recording in `dir` into `dir/composed.webm` with the `ffmpeg` on the
/// PATH; returns the file's path.
pub fn compose(dir: &Path) -> Result<PathBuf, ComposeError> {
    let m = super::library::read_manifest(dir).ok_or(ComposeError::Manifest)?;
    let (video, audio, tmp) = (
        dir.join("composed.video.tmp"),
        dir.join("composed.audio.tmp"),
        dir.join("composed.webm.tmp"),
    );
    let mux: Vec<String> = ["-y", "-nostdin", "-v", "error", "-i"]
        .iter()
        .map(|a| (*a).to_owned())
        .chain([
            video.display().to_string(),
            "-i".into(),
            audio.display().to_string(),
        ])
        .chain(
            ["-map", "0:v", "-map", "1:a", "-c", "copy", "-f", "webm"]
                .iter()
                .map(|a| (*a).to_owned()),
        )
        .chain([tmp.display().to_string()])
        .collect();
    let result = ffmpeg(&ffmpeg_args(&m, dir, &video, Part::Video)?)
        .and_then(|()| ffmpeg(&ffmpeg_args(&m, dir, &audio, Part::Audio)?))
        .and_then(|()| ffmpeg(&mux));
    let _ = std::fs::remove_file(&video);
    let _ = std::fs::remove_file(&audio);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let dest = dir.join(COMPOSED);
    std::fs::rename(&tmp, &dest).map_err(|e| ComposeError::Failed(e.to_string()))?;
    Ok(dest)
}

/// Whether the system's `ffmpeg` can be run (start-up check of `RECORDING_AUTO_COMPOSE`).
pub fn ffmpeg_available() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ffmpeg(args: &[String]) -> Result<(), ComposeError> {
    let out = Command::new("ffmpeg")
        .args(args)
        .output()
        .map_err(ComposeError::NoFfmpeg)?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(ComposeError::Failed(err.chars().take(2000).collect()))
}
