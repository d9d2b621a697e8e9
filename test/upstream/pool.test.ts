// The one classification of upstream failures (upstream/pool.ts).
import t from 'tap'
import { errors } from 'undici'
import { Errors } from '../../src/errors.js'
import { retryableFailure, upstreamErrorKind } from '../../src/upstream/pool.js'

t.test('an llhttp parse error is a protocol error, though undici 7 gives it no code', async (t) => {
  // What undici 7 throws for a NUL or a bare CR in a response field value: `code` is undefined.
  const err = new errors.HTTPParserError('Response does not match the HTTP/1.1 protocol (Invalid header value char)')
  t.equal((err as { code?: string }).code, undefined, 'still no code in this undici')
  t.equal(upstreamErrorKind(err), Errors.UPSTREAM_PROTOCOL, '502 LB_ERR_UPSTREAM_PROTOCOL, not a reset')
  t.notOk(retryableFailure(err), 'the server answered: never sent again')
  t.equal(upstreamErrorKind(Object.assign(new Error('x'), { code: 'HPE_INVALID_CONSTANT' })), Errors.UPSTREAM_PROTOCOL, 'with a code too')
  t.equal(upstreamErrorKind(new Error('no code')), Errors.UPSTREAM_RESET, 'an error without a code is still a reset')
})
