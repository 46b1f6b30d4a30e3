// libp2p 3.x calls Promise.withResolvers, which Node 20 lacks (added in Node 22).
// Without it every dial fails with ECONNRESET, so load this module before the first libp2p import.
// It lives here, next to the only code that needs it; '@causeway/libp2p/polyfills' exports it for
// programs that import libp2p modules themselves.
type Resolvers<T> = { promise: Promise<T>; resolve: (v: T | PromiseLike<T>) => void; reject: (e?: unknown) => void }
const P = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> }
if (typeof P.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T>(): Resolvers<T> {
      let resolve!: Resolvers<T>['resolve']
      let reject!: Resolvers<T>['reject']
      const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    },
  })
}
export {}
