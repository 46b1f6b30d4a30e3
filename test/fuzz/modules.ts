// The decoders under test, from the TypeScript sources (vitest); the fuzzer imports the same names from dist.
import { decodeStored, decodeValue, encodeValue } from '../../packages/core/src/codec.js'
import { decodeEntry, encodeEntry } from '../../packages/core/src/entry.js'
import { decodeFrame, encodeFrame } from '../../packages/core/src/protocol.js'
import { CausalContext, crc32 } from '../../packages/core/src/context.js'
import { CausewayError } from '../../packages/core/src/errors.js'
import { FrameDecoder, encodeFrame as lengthPrefixed } from '../../packages/libp2p/src/frame.js'
import { CausewayError as FramerError } from '@causeway/core'

export const m = { decodeValue, decodeStored, decodeEntry, decodeFrame, CausalContext, crc32, CausewayError, FrameDecoder, FramerError }
export { encodeValue, encodeEntry, encodeFrame, lengthPrefixed }
