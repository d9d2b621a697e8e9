// A listener's listening socket, kept apart from the HTTP server that serves
// its connections. A reload that replaces a listener on the same address
// (renamed, TLS or h2 turned on or off) hands the socket to the new one, as
// HAProxy and Envoy pass listening sockets on: binding again would fail
// (EADDRINUSE) and closing first would refuse connections. Under node:cluster
// the primary holds the real socket for every worker; this one is never
// closed while a worker's listeners still take its connections.
import net, { type AddressInfo, type Socket } from 'node:net'

export class ListenSocket {
  readonly #net: net.Server
  /** Where connections accepted now go: an HTTP, HTTPS or HTTP/2 server that does not listen itself. */
  #server: net.Server
  #bound: AddressInfo | undefined

  /** `server` gets the connections until `serve` names another. */
  constructor (server: net.Server) {
    this.#server = server
    // node:http's and node:https's default, but not http2.createSecureServer's:
    // with Nagle on, a response written in two parts waits for the client's
    // delayed ACK (40 ms on Linux) before its second part goes out. Set where
    // connections are accepted, which is here. Each is handed over as node:http
    // documents for connections from elsewhere: its 'connection' listeners take it.
    this.#net = net.createServer({ noDelay: true }, (socket: Socket) => { this.#server.emit('connection', socket) })
  }

  listen (port: number, host: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#net.once('error', reject)
      this.#net.listen(port, host, () => {
        this.#net.off('error', reject)
        // Where it was bound: a closed socket has no address, and /status still lists a draining listener.
        this.#bound = this.#net.address() as AddressInfo
        resolve()
      })
    })
  }

  address (): AddressInfo {
    return (this.#net.address() as AddressInfo | null) ?? this.#bound!
  }

  /** Connections accepted from now on go to `server`. */
  serve (server: net.Server): void {
    this.#server = server
  }

  /** Whether `server` gets the connections accepted now. */
  servedBy (server: net.Server): boolean {
    return this.#server === server
  }

  /** Stop accepting; resolves once the connections accepted here are all closed. */
  close (): Promise<void> {
    return new Promise<void>((resolve) => this.#net.close(() => resolve()))
  }
}
