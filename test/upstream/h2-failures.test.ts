// How HTTP/2 upstream failures are classified (upstream/pool.ts, the one
// table): a refused stream was never processed, so any method may go
// elsewhere for free; other stream errors may have been processed; a TLS
// server that will not speak h2 is a connect failure.
import t from 'tap'
import { Errors } from '../../src/errors.js'
import { connectFailure, refusedStream, retryableFailure, upstreamErrorKind } from '../../src/upstream/pool.js'
import { NO_H2_CODE, tlsFailure } from '../../src/upstream/tls.js'

const streamError = (name: string): Error =>
  Object.assign(new Error(`Stream closed with error code ${name}`), { code: 'ERR_HTTP2_STREAM_ERROR' })

t.test('RST_STREAM(REFUSED_STREAM): a free retry, whatever the method', async (t) => {
  const err = streamError('NGHTTP2_REFUSED_STREAM')
  t.ok(refusedStream(err))
  t.ok(connectFailure(err), 'no retry budget spent: no work was done')
  t.ok(retryableFailure(err))
  t.equal(upstreamErrorKind(err), Errors.UPSTREAM_RESET)
})

t.test('any other stream reset may have been processed: not retried', async (t) => {
  for (const name of ['NGHTTP2_INTERNAL_ERROR', 'NGHTTP2_CANCEL', 'NGHTTP2_PROTOCOL_ERROR']) {
    const err = streamError(name)
    t.notOk(refusedStream(err), name)
    t.notOk(retryableFailure(err), name)
  }
})

t.test('no h2 in ALPN: a connect failure (502 UF), retried elsewhere for free', async (t) => {
  const err = Object.assign(new Error('the server did not negotiate h2'), { code: NO_H2_CODE })
  t.ok(tlsFailure(NO_H2_CODE))
  t.equal(upstreamErrorKind(err), Errors.UPSTREAM_CONNECT)
  t.ok(connectFailure(err))
  t.notOk(refusedStream(err))
})
