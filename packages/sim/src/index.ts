export { createSimNetwork } from './network.js'
export { createRandom, randomInt, type RandomFn } from './random.js'
export type {
  LatencyFn,
  SimAdapter,
  SimAdapterOptions,
  SimLinkStats,
  SimNetwork,
  SimNetworkOptions,
  SimNetworkStats,
  SimPeerOptions,
} from './types.js'
