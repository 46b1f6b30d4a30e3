import type { Benchmark } from './harness.js'
import { kvMicro } from './benches/kv-micro.js'
import { availability } from './benches/availability.js'
import { replicationSim } from './benches/replication-sim.js'
import { replicationLibp2p } from './benches/replication-libp2p.js'
import { controlPlane } from './benches/control-plane.js'
import { peers } from './benches/peers.js'
import { ormService } from './benches/orm-service.js'
import { level } from './benches/level.js'
import { scale } from './benches/scale.js'

/** Every benchmark, in run order. */
export const benchmarks: Benchmark[] = [kvMicro, availability, replicationSim, replicationLibp2p, ormService, level, scale, controlPlane, peers]
