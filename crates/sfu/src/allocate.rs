//! Per-subscriber allocation: which simulcast layer of each video track one subscriber
//! gets, from its downlink estimate, the tiles it shows and what the publishers send.
//!
//! Plain data and arithmetic (no str0m, no engine), so it is unit-tested directly; the
//! engine's glue (`engine/adapt.rs`) builds the [`Demand`]s and applies the [`Plan`].
//!
//! The rules (docs/sfu.md, "Allocation"):
//! - tracks are served in priority order: screen share, then the active speaker, then the
//!   other cameras, larger tiles first within a priority;
//! - pass 1 gives every visible track its lowest layer, whatever the budget: a track is
//!   paused only when hidden (pausing for bandwidth, as LiveKit does, is not done: a
//!   camera sent without simulcast has no smaller layer to fall back to, and a frozen
//!   tile is worse than a late one);
//! - pass 2 raises each track, in the same order, one layer at a time up to the layer its
//!   tile needs, while the budget lasts;
//! - hysteresis: keeping (or going back to) a layer at or below the current one needs the
//!   budget to cover it; going above the current one needs [`UP_HEADROOM_PERCENT`] spare,
//!   so that an estimate hovering at a layer's rate does not make it flap (each switch up
//!   costs a keyframe).

/// Spare budget (per cent of the new total) needed to go above the current layer.
pub const UP_HEADROOM_PERCENT: u64 = 15;

/// Height assumed for a publisher's top layer while no keyframe told its size; each
/// layer below is half as high (the page sends quarter/half/full resolution).
pub const ASSUMED_TOP_HEIGHT: u32 = 720;

/// How urgent a track is for one subscriber (lower first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    ScreenShare,
    Speaker,
    Camera,
}

/// One video track of one subscriber, as the allocator sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Demand {
    pub priority: Priority,
    /// Tile area in pixels (larger first within a priority); 0 when unknown.
    pub area: u64,
    /// Bits per second of each layer the publisher sends now, lowest first.
    pub rates: Vec<u64>,
    /// Highest layer index the subscriber needs (tile size, quality asked for).
    pub cap: usize,
    /// Hidden tiles get nothing.
    pub visible: bool,
    /// Layer index forwarded now, if any.
    pub current: Option<usize>,
}

/// The allocation of one subscriber.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Per demand (same order): the layer index to forward, `None` = paused (hidden).
    pub grants: Vec<Option<usize>>,
    /// Bits per second the grants take.
    pub used: u64,
    /// Bits per second every visible track at its cap would take: what to probe for.
    pub wanted: u64,
    /// The cost of the first step up that the budget refused, if any: the padding target
    /// that lets the estimate grow to it.
    pub next_step: Option<u64>,
}

/// Allocate `budget` bits per second across `demands`.
pub fn allocate(budget: u64, demands: &[Demand]) -> Plan {
    let mut order: Vec<usize> = (0..demands.len()).collect();
    order.sort_by_key(|&i| (demands[i].priority, std::cmp::Reverse(demands[i].area)));
    let mut grants = vec![None; demands.len()];
    let mut used = 0u64;
    for (i, d) in demands.iter().enumerate() {
        if let Some(&lowest) = d.rates.first()
            && d.visible
        {
            grants[i] = Some(0);
            used = used.saturating_add(lowest);
        }
    }
    let mut next_step = None;
    for &i in &order {
        let d = &demands[i];
        let Some(mut g) = grants[i] else {
            continue;
        };
        let top = d.cap.min(d.rates.len().saturating_sub(1));
        while g < top {
            let step = d.rates[g + 1].saturating_sub(d.rates[g]);
            let total = used + step;
            let fits = if d.current.is_some_and(|c| g < c) {
                total <= budget
            } else {
                total * (100 + UP_HEADROOM_PERCENT) / 100 <= budget
            };
            if !fits {
                next_step.get_or_insert(step);
                break;
            }
            used = total;
            g += 1;
        }
        grants[i] = Some(g);
    }
    let wanted = demands
        .iter()
        .filter(|d| d.visible && !d.rates.is_empty())
        .map(|d| d.rates[d.cap.min(d.rates.len() - 1)])
        .sum();
    Plan {
        grants,
        used,
        wanted,
        next_step,
    }
}

/// The lowest layer whose height covers a tile `tile_height` device pixels high (the
/// top one if none does). `heights` are the layers' heights, lowest layer first; `None`
/// where unknown (assumed from [`ASSUMED_TOP_HEIGHT`], halving per layer down).
pub fn cap_for_tile(heights: &[Option<u32>], tile_height: u32) -> usize {
    let n = heights.len();
    for (i, h) in heights.iter().enumerate() {
        let assumed = ASSUMED_TOP_HEIGHT >> (n - 1 - i).min(31);
        if h.unwrap_or(assumed) >= tile_height {
            return i;
        }
    }
    n.saturating_sub(1)
}

/// Width and height of a VP8 keyframe, from the first packet's payload (RFC 7741
/// descriptor, then the RFC 6386 frame header: 3-byte tag, start code, 14-bit sizes).
/// `None` for anything else; never panics.
pub fn vp8_keyframe_size(payload: &[u8], header_at: usize) -> Option<(u32, u32)> {
    let b = payload.get(header_at..header_at + 10)?;
    if b[0] & 0x01 != 0 || b[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u32::from(u16::from_le_bytes([b[6], b[7]]) & 0x3fff);
    let h = u32::from(u16::from_le_bytes([b[8], b[9]]) & 0x3fff);
    Some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam(rates: &[u64], cap: usize, current: Option<usize>) -> Demand {
        Demand {
            priority: Priority::Camera,
            area: 0,
            rates: rates.to_vec(),
            cap,
            visible: true,
            current,
        }
    }

    const LAYERS: [u64; 3] = [150_000, 500_000, 1_500_000];

    #[test]
    fn the_budget_is_filled_in_priority_order_above_the_lowest_layers() {
        let mut screen = cam(&[2_000_000], 0, None);
        screen.priority = Priority::ScreenShare;
        let demands = [cam(&LAYERS, 2, None), screen, cam(&LAYERS, 2, None)];
        // Screen 2 M, then both cameras' lowest, then the first camera up to the middle
        // (2.65 M, with its 15 % headroom 3.05 M); the second one's step would need 3.45 M.
        let plan = allocate(3_100_000, &demands);
        assert_eq!(plan.grants, vec![Some(1), Some(0), Some(0)]);
        assert_eq!(plan.used, 2_000_000 + 500_000 + 150_000);
        assert_eq!(plan.next_step, Some(1_000_000));
        assert_eq!(plan.wanted, 5_000_000);
        // Too little for everything: every visible track keeps its lowest layer.
        let plan = allocate(10, &demands);
        assert_eq!(plan.grants, vec![Some(0), Some(0), Some(0)]);
        assert_eq!(plan.next_step, Some(350_000));
    }

    #[test]
    fn hidden_tiles_and_tile_caps_are_respected() {
        let mut hidden = cam(&LAYERS, 2, Some(2));
        hidden.visible = false;
        let demands = [hidden, cam(&LAYERS, 0, None)];
        let plan = allocate(100_000_000, &demands);
        assert_eq!(plan.grants, vec![None, Some(0)]);
        assert_eq!(plan.wanted, 150_000);
    }

    #[test]
    fn going_up_needs_headroom_and_staying_does_not() {
        // Exactly the top layer's rate: kept when current, not taken when not.
        let budget = 1_500_000;
        assert_eq!(
            allocate(budget, &[cam(&LAYERS, 2, Some(2))]).grants,
            vec![Some(2)]
        );
        assert_eq!(
            allocate(budget, &[cam(&LAYERS, 2, Some(1))]).grants,
            vec![Some(1)]
        );
        // With the headroom it goes up.
        let more = budget * (100 + UP_HEADROOM_PERCENT) / 100;
        assert_eq!(
            allocate(more, &[cam(&LAYERS, 2, Some(1))]).grants,
            vec![Some(2)]
        );
        // Below the current layer's rate it comes down.
        assert_eq!(
            allocate(1_000_000, &[cam(&LAYERS, 2, Some(2))]).grants,
            vec![Some(1)]
        );
    }

    #[test]
    fn larger_tiles_go_first_within_a_priority() {
        let mut big = cam(&LAYERS, 2, None);
        big.area = 1280 * 720;
        let mut small = cam(&LAYERS, 2, None);
        small.area = 320 * 180;
        let plan = allocate(1_000_000, &[small, big]);
        assert_eq!(plan.grants, vec![Some(0), Some(1)]);
    }

    #[test]
    fn tile_height_picks_the_smallest_layer_that_covers_it() {
        let unknown = [None, None, None];
        assert_eq!(cap_for_tile(&unknown, 100), 0); // 180 covers it
        assert_eq!(cap_for_tile(&unknown, 300), 1); // 360
        assert_eq!(cap_for_tile(&unknown, 700), 2); // 720
        assert_eq!(cap_for_tile(&unknown, 2000), 2); // the top, at most
        assert_eq!(cap_for_tile(&[Some(240), Some(480), Some(960)], 400), 1);
        assert_eq!(cap_for_tile(&[], 400), 0);
    }

    #[test]
    fn vp8_keyframe_size_reads_the_frame_header() {
        // Tag (keyframe), start code, 640 × 360.
        let frame = [
            0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01,
        ];
        assert_eq!(vp8_keyframe_size(&frame, 1), Some((640, 360)));
        assert_eq!(vp8_keyframe_size(&frame[..8], 1), None);
        let mut delta = frame;
        delta[1] = 0x01;
        assert_eq!(vp8_keyframe_size(&delta, 1), None);
    }
}
