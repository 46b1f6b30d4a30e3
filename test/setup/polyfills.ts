// libp2p 3.x calls Promise.withResolvers, which Node 20 lacks.
import '@causeway/libp2p/polyfills'
