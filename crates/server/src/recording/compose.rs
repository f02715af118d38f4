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

/// The ffmpeg arguments that compose `m` (files in `dir`) into `out`.
pub fn ffmpeg_args(m: &Manifest, dir: &Path, out: &Path) -> Result<Vec<String>, ComposeError> {
    let span_ms = m
        .stopped_ms
        .unwrap_or_else(|| m.tracks.iter().map(|t| t.stop_ms).fold(0.0, f64::max));
    let span = (span_ms / 1000.0).max(0.1);
    let mut args: Vec<String> = ["-y", "-nostdin", "-v", "error"].map(String::from).to_vec();
    let mut filters = Vec::new();
    let (mut videos, mut audios) = (Vec::new(), Vec::new());
    for (i, t) in m.tracks.iter().enumerate() {
        args.extend(["-i".into(), dir.join(&t.file).display().to_string()]);
        let start = (t.start_ms / 1000.0).max(0.0);
        if t.kind == "video" {
            let (w, h) = TILE;
            filters.push(format!(
                "[{i}:v]fps={FPS},scale={w}:{h}:force_original_aspect_ratio=decrease,\
                 pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p,\
                 tpad=start_duration={start:.3}:stop_mode=clone:stop_duration={span:.3}[v{i}]"
            ));
            videos.push(format!("[v{i}]"));
        } else {
            let delay = (start * 1000.0).round() as u64;
            filters.push(format!(
                "[{i}:a]aresample=48000,adelay=delays={delay}:all=1,apad[a{i}]"
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
        filters.push(format!("[{n}:v]format=yuv420p[vout]"));
    } else if videos.len() == 1 {
        filters.push(format!("{}null[vout]", videos[0]));
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
        filters.push(format!(
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
        filters.push(format!("[{k}:a]anull[aout]"));
    } else if audios.len() == 1 {
        filters.push(format!("{}anull[aout]", audios[0]));
    } else {
        filters.push(format!(
            "{}amix=inputs={}:duration=longest:normalize=0[aout]",
            audios.concat(),
            audios.len()
        ));
    }
    args.extend([
        "-filter_complex".into(),
        filters.join(";"),
        "-map".into(),
        "[vout]".into(),
        "-map".into(),
        "[aout]".into(),
        "-t".into(),
        format!("{span:.3}"),
        "-c:v".into(),
        "libvpx".into(),
        "-b:v".into(),
        "1M".into(),
        "-deadline".into(),
        "realtime".into(),
        "-cpu-used".into(),
        "8".into(),
        "-c:a".into(),
        "libopus".into(),
        "-b:a".into(),
        "64k".into(),
        "-f".into(),
        "webm".into(),
        out.display().to_string(),
    ]);
    Ok(args)
}

/// Compose the recording in `dir` into `dir/composed.webm` with the `ffmpeg` on the
/// PATH; returns the file's path.
pub fn compose(dir: &Path) -> Result<PathBuf, ComposeError> {
    let m = super::library::read_manifest(dir).ok_or(ComposeError::Manifest)?;
    let tmp = dir.join("composed.webm.tmp");
    let args = ffmpeg_args(&m, dir, &tmp)?;
    let out = Command::new("ffmpeg")
        .args(&args)
        .output()
        .map_err(ComposeError::NoFfmpeg)?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(ComposeError::Failed(err.chars().take(2000).collect()));
    }
    let dest = dir.join(COMPOSED);
    std::fs::rename(&tmp, &dest).map_err(|e| ComposeError::Failed(e.to_string()))?;
    Ok(dest)
}
