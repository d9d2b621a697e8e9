// A real @grpc/grpc-js server for the gRPC end-to-end tests: the Echo service
// of test/fixtures/grpc/echo.proto and the standard grpc.health.v1 Health
// service, cleartext (h2c) or TLS (h2). Stopped on teardown, even when a test
// fails.
import { fileURLToPath } from 'node:url'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import type { CertificatePair } from '../../src/certs.js'
import type { Teardown } from './certs.js'

const FIXTURES = fileURLToPath(new URL('../fixtures/grpc/', import.meta.url))
const LOAD: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true }

/** The package definitions, loaded once. */
let loaded: { echo: grpc.GrpcObject, health: grpc.GrpcObject } | undefined
export function protos (): { echo: grpc.GrpcObject, health: grpc.GrpcObject } {
  loaded ??= {
    echo: grpc.loadPackageDefinition(protoLoader.loadSync(`${FIXTURES}echo.proto`, LOAD)),
    health: grpc.loadPackageDefinition(protoLoader.loadSync(`${FIXTURES}health.proto`, LOAD))
  }
  return loaded
}

export function echoService (): grpc.ServiceClientConstructor {
  return ((protos().echo.switchyard as grpc.GrpcObject).test as grpc.GrpcObject).Echo as grpc.ServiceClientConstructor
}

export function healthService (): grpc.ServiceClientConstructor {
  return (((protos().health.grpc as grpc.GrpcObject).health as grpc.GrpcObject).v1 as grpc.GrpcObject).Health as grpc.ServiceClientConstructor
}

export interface EchoRequest {
  message: string
  count?: number
  fail_code?: number
  delay_ms?: number
  trailers_only?: boolean
}

export interface GrpcOrigin {
  readonly port: number
  /** `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`, for a backend's server URL. */
  readonly url: string
  /** Health status by service name ('' = the server); a service not in it is SERVICE_UNKNOWN. */
  readonly health: Map<string, 'SERVING' | 'NOT_SERVING'>
  /** Health checks answered. */
  healthChecks: number
  /** Each call's request metadata and whether it carried a deadline, as the server saw them. */
  readonly calls: Array<{ readonly method: string, readonly metadata: Record<string, unknown>, readonly deadline: boolean }>
  /** A Stream call sends its first reply, then waits for this before the rest (so a test can see it streamed). */
  release (): void
}

export async function startGrpcOrigin (t: Teardown, tls?: CertificatePair): Promise<GrpcOrigin> {
  const server = new grpc.Server()
  let gate: () => void = () => {}
  let released = new Promise<void>((resolve) => { gate = resolve })
  const origin = {
    port: 0,
    url: '',
    health: new Map<string, 'SERVING' | 'NOT_SERVING'>([['', 'SERVING']]),
    healthChecks: 0,
    calls: [] as Array<{ method: string, metadata: Record<string, unknown>, deadline: boolean }>,
    release () {
      gate()
      released = new Promise<void>((resolve) => { gate = resolve })
    }
  }
  const seen = (method: string, call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): void => {
    origin.calls.push({ method, metadata: call.metadata.getMap(), deadline: Number.isFinite(Number(call.getDeadline())) })
  }
  server.addService(echoService().service, {
    Unary (call: grpc.ServerUnaryCall<EchoRequest, unknown>, callback: grpc.sendUnaryData<unknown>) {
      seen('Unary', call)
      const req = call.request
      const answer = (): void => {
        if (req.trailers_only !== true) {
          const md = new grpc.Metadata()
          md.set('x-origin-header', 'from-origin')
          call.sendMetadata(md)
        }
        if ((req.fail_code ?? 0) > 0) {
          callback({ code: req.fail_code!, details: req.message })
          return
        }
        const trailer = new grpc.Metadata()
        trailer.set('x-origin-trailer', 'done')
        const client = call.metadata.get('x-client')[0]
        callback(null, { message: `echo: ${req.message} (x-client: ${String(client)})`, index: 0 }, trailer)
      }
      if ((req.delay_ms ?? 0) > 0) setTimeout(answer, req.delay_ms).unref()
      else answer()
    },
    Stream (call: grpc.ServerWritableStream<EchoRequest, unknown>) {
      seen('Stream', call)
      const count = call.request.count ?? 1
      call.write({ message: call.request.message, index: 0 })
      void released.then(() => {
        for (let i = 1; i < count; i++) call.write({ message: call.request.message, index: i })
        call.end()
      })
    }
  })
  server.addService(healthService().service, {
    Check (call: grpc.ServerUnaryCall<{ service: string }, unknown>, callback: grpc.sendUnaryData<unknown>) {
      origin.healthChecks++
      const status = origin.health.get(call.request.service)
      if (status === undefined) callback({ code: grpc.status.NOT_FOUND, details: 'unknown service' })
      else callback(null, { status })
    }
  })
  const creds = tls === undefined
    ? grpc.ServerCredentials.createInsecure()
    : grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(tls.certPem), private_key: Buffer.from(tls.keyPem) }])
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', creds, (err, p) => { if (err !== null) reject(err); else resolve(p) })
  })
  t.teardown(() => new Promise<void>((resolve) => {
    origin.release()
    server.forceShutdown()
    resolve()
  }))
  origin.port = port
  origin.url = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`
  return origin
}

/** A client of `service` to a TLS listener at 127.0.0.1:`port` that trusts `ca` (closed on teardown). */
export function grpcClient (t: Teardown, service: grpc.ServiceClientConstructor, port: number, ca: string): grpc.Client {
  const client = new service(`127.0.0.1:${port}`, grpc.credentials.createSsl(Buffer.from(ca)), {
    'grpc.ssl_target_name_override': 'localhost',
    'grpc.default_authority': 'localhost'
  })
  t.teardown(() => { client.close() })
  return client
}
