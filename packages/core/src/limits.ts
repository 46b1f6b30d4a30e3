/**
 * Every limit and tunable constant of the engine, in one place, each named with its unit.
 * The decoders' own bounds (codec.ts, entry.ts, protocol.ts, context.ts) are re-exported here so
 * that this module is the one place to look; they are defined next to the code that enforces them.
 */
export { MAX_KEY_BYTES, MAX_VALUE_DEPTH } from './codec.js'
export { MAX_OPS_PER_WRITE, MAX_DEPS } from './entry.js'
export { MAX_FRAME_ENTRIES } from './protocol.js'
export { MAX_OBSERVED_KEYS } from './context.js'

const KiB = 1024
const MiB = 1024 * 1024

// ---------------------------------------------------------------- openSite defaults and bounds

/** Default and ceiling of `maxValueBytes`. */
export const MAX_VALUE_BYTES_DEFAULT = 1 * MiB
export const MAX_VALUE_BYTES_CEILING = 64 * MiB
export const SHARDS_DEFAULT = 4
export const SHARDS_MAX = 64
/** Cached key states per shard. */
export const CACHE_ENTRIES_DEFAULT = 100_000
export const CACHE_ENTRIES_MIN = 16
export const HEARTBEAT_MS_DEFAULT = 1000
export const HEARTBEAT_MS_MIN = 10

// ---------------------------------------------------------------- entries and frames

/** Limit on the encoded size of one write entry (so it always fits one frame of any transport). */
export const MAX_ENTRY_BYTES = 3 * MiB
/** Room kept for an entry's/frame's envelope around the values it carries. */
export const FRAME_OVERHEAD_BYTES = 64 * KiB
/** Bounds of one writes frame. */
export const FRAME_ENTRIES = 1024
export const FRAME_BYTES = 1 * MiB
/** Frames from one peer waiting to be processed; beyond this they are dropped and nacked. */
export const MAX_INBOUND_FRAMES = 256

// ---------------------------------------------------------------- hostile or broken peers

/** Invalid frames or entries from one peer within BAD_FRAME_WINDOW_MS before it is disconnected. */
export const MAX_BAD_FRAMES = 32
export const BAD_FRAME_WINDOW_MS = 60_000
/** How long a peer found faulty is ignored (its frames dropped, its connections hung up). */
export const FAULTY_COOLDOWN_MS = 60_000
/** A peer's bad input is logged at most once per reason per this interval. */
export const PEER_WARN_INTERVAL_MS = 10_000
/** Default of `recoveryTimeoutMs`: how long writes wait for the entries a peer claims of our own stream. */
export const RECOVERY_TIMEOUT_MS_DEFAULT = 10_000
/** Default of `maxClockSkewMs` (the bound itself lives with the clock, clock.ts). */
export { DEFAULT_MAX_CLOCK_SKEW_MS as MAX_CLOCK_SKEW_MS_DEFAULT } from './clock.js'

// ---------------------------------------------------------------- streams and applying

/** Entries kept in memory per stream for live relaying and applying without a log read. */
export const RING_ENTRIES = 4096
export const RING_BYTES = 8 * MiB
/** Bounds of one apply round. */
export const ROUND_ENTRIES = 2048
export const ROUND_BYTES = 32 * MiB
/** Smallest per-stream share of a round's budget (entries, bytes). */
export const ROUND_SHARE_ENTRIES_MIN = 64
export const ROUND_SHARE_BYTES_MIN = 1 * MiB

// ---------------------------------------------------------------- shards

/** Items committed by one storage batch of a shard. */
export const MAX_ITEMS_PER_BATCH = 2048
/** Bound on queued items per shard: callers wait (back-pressure) beyond it. */
export const MAX_QUEUED_ITEMS = 65_536

/**
 * Per-shard filter of the keys that may have a state (key-filter.ts), so a read of a new key costs
 * no storage call: bits per key and probes (~1% false positives), first layer's keys, and the bound
 * on keys tracked (beyond it the filter is dropped: about 10-20 MiB of bits per shard at the bound).
 */
export const KEY_FILTER_BITS_PER_KEY = 10
export const KEY_FILTER_PROBES = 7
export const KEY_FILTER_FIRST_KEYS = 65_536
export const KEY_FILTER_MAX_KEYS = 4_194_304
/** Keys per storage call while the filter is built from a shard's states on open. */
export const KEY_FILTER_SCAN_BATCH = 1000

// ---------------------------------------------------------------- scans and indexes

/** Keys per shard fetched by the first storage call of a scan (most index lookups match a few keys). */
export const SCAN_FIRST_BATCH = 64
/** Keys per shard fetched by each later storage call. */
export const SCAN_BATCH = 1000
/** Keys whose liveness scanKeys checks with one storage round trip. */
export const SCAN_LIVE_CHUNK = 256
/** Keys re-indexed per shard batch when an index is (re)built. */
export const REINDEX_BATCH_KEYS = 512

// ---------------------------------------------------------------- stability and trimming

/** Logs are trimmed every this many heartbeats, tombstones collected every this many. */
export const TRIM_EVERY_BEATS = 5
export const COLLECT_EVERY_BEATS = 10
/** A stream's log is trimmed only once at least this many entries can go. */
export const TRIM_MIN_ENTRIES = 1024
/**
 * For this long after start, configured peers not seen yet count as first-hand upstreams, so
 * neighbours do not relay their writes to us while links come up one by one.
 */
export const STARTUP_UPSTREAM_GRACE_MS = 2000
/** Beats a pruned relay may stay ahead of us on an origin before we ask it to relay again. */
export const PRUNE_STALL_BEATS = 3
/** Deepest the stability tree may grow (hops to its root); a dead root is forgotten past it. */
export const STABILITY_MAX_HOPS = 32
/** Tombstone-marked keys examined per shard per collection pass. */
export const COLLECT_KEYS_PER_PASS = 4096

// ---------------------------------------------------------------- waits

export const IDLE_TIMEOUT_MS_DEFAULT = 30_000
/** How long opening waits for recovered writes to apply. */
export const RECOVER_IDLE_TIMEOUT_MS = 60_000
/** How long close() lets queued writes finish. */
export const CLOSE_DRAIN_MS = 10_000
/** Polling step of idle() and close(). */
export const POLL_MS = 2

// ---------------------------------------------------------------- membership and bootstrap

/** openSite waits this long for a bootstrap (snapshot installed and caught up) by default. */
export const BOOTSTRAP_TIMEOUT_MS_DEFAULT = 60_000
/** Keys read per bootstrap chunk (one chunk in flight per bootstrapping peer). */
export const BOOTSTRAP_CHUNK_KEYS = 512
/** Bytes of states per bootstrap chunk (a single larger state still goes alone). */
export const BOOTSTRAP_CHUNK_BYTES = 256 * 1024
/** A bootstrap request unanswered this long is sent again (the source may have been busy). */
export const BOOTSTRAP_RETRY_MS = 5_000
/** Bootstrapping peers a source serves at once (more are ignored and ask again). */
export const BOOTSTRAP_MAX_SERVING = 4
/** A peer silent for longer stops holding back log trimming ('expired'): 7 days. */
export const OFFLINE_HORIZON_MS_DEFAULT = 7 * 24 * 3600_000
// ---------------------------------------------------------------- remote reads (remote-read.ts)
/** Remote reads this site waits for answers to at once. */
export const MAX_PENDING_REMOTE_READS = 4096
/** Remote reads one peer may have this site serve at once (beyond: answered unavailable). */
export const MAX_REMOTE_READS_SERVED_PER_PEER = 64
export { MAX_REMOTE_READ_KEYS, MAX_REMOTE_READ_WAIT_MS } from './protocol.js'
/** How long a remote read waits for a member's answer unless told (ReadOptions.waitMs). */
export const REMOTE_READ_WAIT_MS_DEFAULT = 2000
