// Must stay the first import: libp2p 3.x needs Promise.withResolvers, which Node 20 lacks.
import './polyfills.js'

export { libp2pNetwork, REPLICATION_PROTOCOL, MAX_HELLO_BYTES } from './network.js'
export type { Libp2pNetwork } from './network.js'
export type { Libp2pNetworkOptions, Libp2pPeerOptions } from './options.js'
export { peerIdFromKeyFile, generateSwarmKey, writeSwarmKeyFile, readSwarmKeyFile, loadOrCreatePrivateKey } from './keys.js'
export { FrameDecoder, encodeFrame, varintLength, DEFAULT_MAX_FRAME_BYTES } from './frame.js'
export type { Chunk } from './frame.js'
