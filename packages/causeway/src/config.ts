import { readFile } from 'node:fs/promises'
import { dirname, isAbsolute, resolve } from 'node:path'
import { CausewayError, SITE_ID_RE } from '@causeway/core'
import type { ConflictOption, Durability } from '@causeway/core'
import { LOG_LEVELS } from './log.js'
import type { LogLevel } from './log.js'

/** One peer of the allow-list, as written in site.json. */
export interface PeerFileConfig {
  site: string
  addrs?: string[]
  peerId?: string
  send?: boolean
  receive?: boolean
}

/** A validated site.json with every path resolved against the config file's directory. */
export interface NodeConfig {
  /** Absolute path of the file this came from (for messages). */
  file: string
  id: string
  dir: string
  shards?: number
  durability?: Durability
  conflicts?: ConflictOption
  /** Replication scopes: key prefix -> member site ids (the same at every site). */
  scopes?: Record<string, string[]>
  maxValueBytes?: number
  heartbeatMs?: number
  listen?: string[]
  privateKey: string
  psk?: string
  peers: PeerFileConfig[]
  http: { host: string; port: number }
  latencyMs?: number | Record<string, number>
  logLevel: LogLevel
}

const TOP_FIELDS = ['id', 'dir', 'shards', 'durability', 'conflicts', 'scopes', 'maxValueBytes', 'heartbeatMs', 'listen', 'privateKey', 'psk', 'peers', 'http', 'latencyMs', 'logLevel'] as const
const PEER_FIELDS = ['site', 'addrs', 'peerId', 'send', 'receive'] as const
const HTTP_FIELDS = ['host', 'port'] as const
const CONFLICT_FIELDS = ['default', 'prefixes'] as const
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost'])

/** Edit distance, for "did you mean" hints on typos. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = tmp
    }
  }
  return row[b.length]!
}

class Checker {
  constructor(readonly file: string) {}

  fail(field: string, problem: string): never {
    throw new CausewayError('INVALID_CONFIG', `${this.file}: ${field === '' ? '' : `field "${field}" `}${problem}`, { details: { file: this.file, field } })
  }

  /** Fields starting with "//" are comments; anything else must be known. */
  object(v: unknown, field: string, known: readonly string[]): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(field, 'must be an object')
    const obj = v as Record<string, unknown>
    for (const k of Object.keys(obj)) {
      if (k.startsWith('//')) continue
      if (!known.includes(k)) {
        const near = known.find((c) => distance(c.toLowerCase(), k.toLowerCase()) <= 2)
        this.fail(field === '' ? k : `${field}.${k}`, `is unknown${near === undefined ? '' : ` (did you mean "${near}"?)`}`)
      }
    }
    return obj
  }

  string(v: unknown, field: string): string {
    if (typeof v !== 'string' || v === '') this.fail(field, 'must be a non-empty string')
    return v
  }

  int(v: unknown, field: string, min: number, max: number): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) this.fail(field, `must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`)
    return v
  }

  bool(v: unknown, field: string): boolean {
    if (typeof v !== 'boolean') this.fail(field, 'must be true or false')
    return v
  }

  strings(v: unknown, field: string): string[] {
    if (!Array.isArray(v)) this.fail(field, 'must be an array of strings')
    return v.map((x, i) => this.string(x, `${field}[${i}]`))
  }

  conflictMode(v: unknown, field: string): 'lww' | 'return-all' {
    if (v !== 'lww' && v !== 'return-all') this.fail(field, `must be "lww" or "return-all" (merge functions cannot be configured in JSON), got ${JSON.stringify(v)}`)
    return v
  }
}

/**
 * Strip // and /* *\/ comments outside strings (JSONC), keeping line structure so JSON.parse
 * positions still match the file.
 */
export function stripJsonComments(text: string): string {
  let out = ''
  let i = 0
  let inString = false
  while (i < text.length) {
    const c = text[i]!
    if (inString) {
      out += c
      if (c === '\\' && i + 1 < text.length) { out += text[i + 1]; i += 2; continue }
      if (c === '"') inString = false
      i++
      continue
    }
    if (c === '"') { inString = true; out += c; i++; continue }
    if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++
      continue
    }
    if (c === '/' && text[i + 1] === '*') {
      i += 2
      while (i < text.length && !(text[i] === '*' && text[i + 1] === '/')) { if (text[i] === '\n') out += '\n'; i++ }
      i += 2
      continue
    }
    out += c
    i++
  }
  return out
}

/** Validate a parsed config object; `file` is used for messages and to resolve relative paths. */
export function validateConfig(raw: unknown, file: string): NodeConfig {
  const c: Checker = new Checker(file) // explicit type: lets TS narrow after c.fail() (never)
  const base = dirname(file)
  const path = (p: string): string => (isAbsolute(p) ? p : resolve(base, p))
  const top = c.object(raw, '', TOP_FIELDS)

  const id = c.string(top['id'], 'id')
  if (!SITE_ID_RE.test(id)) c.fail('id', `must match ${SITE_ID_RE}, got ${JSON.stringify(id)}`)
  if (top['dir'] === undefined) c.fail('dir', 'is required (the site\'s data directory)')
  const dir = path(c.string(top['dir'], 'dir'))
  const cfg: NodeConfig = {
    file,
    id,
    dir,
    privateKey: top['privateKey'] === undefined ? resolve(dir, 'peer.key') : path(c.string(top['privateKey'], 'privateKey')),
    peers: [],
    http: { host: '127.0.0.1', port: 0 },
    logLevel: 'warn',
  }
  if (top['shards'] !== undefined) cfg.shards = c.int(top['shards'], 'shards', 1, 64)
  if (top['durability'] !== undefined) {
    const d = top['durability']
    if (d !== 'fsync' && d !== 'relaxed') c.fail('durability', `must be "fsync" or "relaxed", got ${JSON.stringify(d)}`)
    cfg.durability = d
  }
  const conflicts = top['conflicts']
  if (conflicts !== undefined) {
    if (typeof conflicts === 'string') {
      cfg.conflicts = c.conflictMode(conflicts, 'conflicts')
    } else {
      const o = c.object(conflicts, 'conflicts', CONFLICT_FIELDS)
      const opt: { default?: 'lww' | 'return-all'; prefixes?: Record<string, 'lww' | 'return-all'> } = {}
      if (o['default'] !== undefined) opt.default = c.conflictMode(o['default'], 'conflicts.default')
      if (o['prefixes'] !== undefined) {
        const p = o['prefixes']
        if (typeof p !== 'object' || p === null || Array.isArray(p)) c.fail('conflicts.prefixes', 'must be an object of prefix -> "lww" | "return-all"')
        // A null-prototype record: a "__proto__" prefix is just a prefix.
        const prefixes = Object.create(null) as Record<string, 'lww' | 'return-all'>
        for (const [k, v] of Object.entries(p)) prefixes[k] = c.conflictMode(v, `conflicts.prefixes.${k}`)
        opt.prefixes = prefixes
      }
      cfg.conflicts = opt
    }
  }
  if (top['scopes'] !== undefined) {
    const sc = top['scopes']
    if (typeof sc !== 'object' || sc === null || Array.isArray(sc)) c.fail('scopes', 'must be an object of key prefix -> array of site ids')
    const scopes = Object.create(null) as Record<string, string[]>
    for (const [k, v] of Object.entries(sc as Record<string, unknown>)) {
      const members = c.strings(v, `scopes.${k}`)
      if (k.length === 0 || members.length === 0 || members.some((m) => !SITE_ID_RE.test(m))) c.fail(`scopes.${k}`, `must be a non-empty prefix with a non-empty array of site ids matching ${SITE_ID_RE}`)
      scopes[k] = members
    }
    cfg.scopes = scopes
  }
  if (top['maxValueBytes'] !== undefined) cfg.maxValueBytes = c.int(top['maxValueBytes'], 'maxValueBytes', 1, 64 * 1024 * 1024)
  if (top['heartbeatMs'] !== undefined) cfg.heartbeatMs = c.int(top['heartbeatMs'], 'heartbeatMs', 10, 600_000)
  if (top['listen'] !== undefined) cfg.listen = c.strings(top['listen'], 'listen')
  if (top['psk'] !== undefined) cfg.psk = path(c.string(top['psk'], 'psk'))
  if (top['peers'] !== undefined) {
    if (!Array.isArray(top['peers'])) c.fail('peers', 'must be an array')
    const seen = new Set<string>()
    cfg.peers = top['peers'].map((p, i) => {
      const f = `peers[${i}]`
      const o = c.object(p, f, PEER_FIELDS)
      const site = c.string(o['site'], `${f}.site`)
      if (!SITE_ID_RE.test(site)) c.fail(`${f}.site`, `must match ${SITE_ID_RE}`)
      if (site === id) c.fail(`${f}.site`, 'is this site itself')
      if (seen.has(site)) c.fail(`${f}.site`, `"${site}" is listed twice`)
      seen.add(site)
      const peer: PeerFileConfig = { site }
      if (o['addrs'] !== undefined) peer.addrs = c.strings(o['addrs'], `${f}.addrs`)
      if (o['peerId'] !== undefined) peer.peerId = c.string(o['peerId'], `${f}.peerId`)
      if (peer.addrs === undefined && peer.peerId === undefined) c.fail(`${f}.addrs`, 'is required (multiaddrs ending with /p2p/<peerId>), or give peerId')
      if (o['send'] !== undefined) peer.send = c.bool(o['send'], `${f}.send`)
      if (o['receive'] !== undefined) peer.receive = c.bool(o['receive'], `${f}.receive`)
      return peer
    })
  }
  if (top['http'] === undefined) c.fail('http', 'is required: { "host": "127.0.0.1", "port": 8101 }')
  const http = c.object(top['http'], 'http', HTTP_FIELDS)
  if (http['host'] !== undefined) cfg.http.host = c.string(http['host'], 'http.host')
  if (!LOOPBACK_HOSTS.has(cfg.http.host)) {
    // The HTTP API has no authentication: it is for processes on the same machine.
    c.fail('http.host', `must be a loopback address (127.0.0.1, ::1, localhost): the HTTP API is unauthenticated, got ${JSON.stringify(cfg.http.host)}`)
  }
  cfg.http.port = c.int(http['port'], 'http.port', 0, 65535)
  const lat = top['latencyMs']
  if (lat !== undefined) {
    if (typeof lat === 'number') {
      cfg.latencyMs = c.int(lat, 'latencyMs', 0, 60_000)
    } else {
      const o = c.object(lat, 'latencyMs', cfg.peers.map((p) => p.site))
      const rec: Record<string, number> = {}
      for (const [k, v] of Object.entries(o)) if (!k.startsWith('//')) rec[k] = c.int(v, `latencyMs.${k}`, 0, 60_000)
      cfg.latencyMs = rec
    }
  }
  if (top['logLevel'] !== undefined) {
    const l = top['logLevel']
    if (typeof l !== 'string' || !(LOG_LEVELS as readonly string[]).includes(l)) c.fail('logLevel', `must be one of ${LOG_LEVELS.join(', ')}`)
    cfg.logLevel = l as LogLevel
  }
  return cfg
}

/** Read, parse (JSON with comments) and validate a config file. */
export async function loadConfig(file: string): Promise<NodeConfig> {
  const abs = resolve(file)
  let text: string
  try {
    text = await readFile(abs, 'utf8')
  } catch (err) {
    throw new CausewayError('INVALID_CONFIG', `${abs}: cannot read config file: ${(err as Error).message}`, { cause: err, details: { file: abs, field: '' } })
  }
  let raw: unknown
  try {
    raw = JSON.parse(stripJsonComments(text))
  } catch (err) {
    throw new CausewayError('INVALID_CONFIG', `${abs}: not valid JSON: ${(err as Error).message}`, { cause: err, details: { file: abs, field: '' } })
  }
  return validateConfig(raw, abs)
}

/** The commented example written by `causeway init`. */
export function exampleConfig(id = 'paris'): string {
  return `{
  "//": "Causeway site configuration. Keys starting with // are comments; // and /* */ comments work too.",
  // This site's id: /^[a-z0-9][a-z0-9_-]{0,62}$/, unique in the deployment.
  "id": "${id}",
  // Data directory (one LevelDB per shard), writable by the service user. State lives under
  // /var/lib/causeway, not next to this file: /etc/causeway is read-only in the systemd unit.
  // (Relative paths would resolve against this file's directory.)
  "dir": "/var/lib/causeway/${id}",
  "shards": 4,
  // "fsync": an acknowledged write is on disk (group commit). "relaxed": OS-buffered.
  "durability": "fsync",
  // "lww", "return-all", or { "default": "lww", "prefixes": { "carts/": "return-all" } }
  "conflicts": "lww",
  // libp2p listen addresses (open this TCP port between sites).
  "listen": ["/ip4/0.0.0.0/tcp/4101"],
  // Ed25519 key fixing this site's PeerId: create it before the first start with
  // \`causeway keygen --out /etc/causeway/peer.key\` (prints the PeerId). Omitted: <dir>/peer.key.
  "privateKey": "/etc/causeway/peer.key",
  // Optional private-network key shared by all sites (\`causeway swarmkey --out /etc/causeway/swarm.key\`).
  // "psk": "/etc/causeway/swarm.key",
  // The allow-list: only these peers may connect. send/receive default to true (one-way links: set one to false).
  "peers": [
    { "site": "lyon", "addrs": ["/ip4/10.0.0.2/tcp/4101/p2p/12D3KooW...lyon"] },
    { "site": "nice", "addrs": ["/ip4/10.0.0.3/tcp/4101/p2p/12D3KooW...nice"], "send": true, "receive": true }
  ],
  // HTTP/JSON API: loopback only (it is unauthenticated).
  "http": { "host": "127.0.0.1", "port": 8101 },
  // Emulated one-way WAN latency per outbound frame, ms (tests and demos only).
  // "latencyMs": 0,
  // fatal | error | warn | info | debug | trace | silent
  "logLevel": "warn"
}
`
}
