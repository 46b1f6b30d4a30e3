// Reproduces the xsalsa20 (WASM) memory bug behind @libp2p/pnet, on its own, in a few ms.
// Each cipher instance keeps its own view of the shared WebAssembly memory; once any instance grows
// the memory, every other instance's view is detached (length 0), so its next update() "grows"
// again by at least one 64 KiB page. Two instances used in turn (pnet's inbound and outbound
// ciphers) then add a page per update until the 1000-page (64 MiB) cap throws a RangeError.
// Run: node packages/libp2p/scripts/repro-xsalsa20.mjs
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
const xsalsa20 = require('xsalsa20')
const key = new Uint8Array(32).fill(1)
const a = xsalsa20(new Uint8Array(24).fill(2), key)
const b = xsalsa20(new Uint8Array(24).fill(3), key)
a.update(new Uint8Array(700 * 1024)) // one large message: the first grow
let pairs = 0
try {
  for (; pairs < 10_000; pairs++) {
    a.update(new Uint8Array(100))
    b.update(new Uint8Array(100))
  }
  console.log(`no crash after ${pairs} pairs of 100-byte updates`)
} catch (err) {
  console.log(`crashed after ${pairs} pairs of 100-byte updates: ${err.name}: ${err.message}`)
  process.exitCode = 1
}
