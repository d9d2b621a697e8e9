// timeouts.clientIdle on HTTP/2: a session is closed (GOAWAY) once no stream
// has been open for that long; a stream that takes longer, with no frame
// meanwhile, is never a reason to send it. Real proxy, origin and client.
import type { ClientHttp2Session } from 'node:http2'
import t from 'tap'
import { testCertificate } from '../helpers/certs.js'
import { h2Request, h2Session, tlsAndPlainListeners } from '../helpers/e2e.js'
import { startOrigin } from '../helpers/origin.js'
import { startProxy } from '../helpers/proxy.js'

const IDLE_MS = 150
/** Failure guard only: nothing passes or fails on how long things take. */
const GUARD_MS = 10_000

function closed (session: ClientHttp2Session): Promise<'closed' | 'guard'> {
  return new Promise((resolve) => {
    const guard = setTimeout(() => resolve('guard'), GUARD_MS)
    session.once('close', () => { clearTimeout(guard); resolve('closed') })
  })
}

t.test('h2 clientIdle: an idle session gets GOAWAY; a slow stream does not', async (t) => {
  const cert = testCertificate(t)
  // The origin answers /slow well after the idle time, with nothing on the wire meanwhile.
  const origin = await startOrigin(t, (seen, res) => {
    const answer = (): void => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('done') }
    if (seen.url === '/slow') setTimeout(answer, IDLE_MS * 4)
    else answer()
  })
  const proxy = await startProxy(t, `${tlsAndPlainListeners(cert)}
timeouts: { clientIdle: ${IDLE_MS}ms }
routes: [{ backend: b }]
backends: { b: { servers: [{ url: "${origin.url}" }] } }
`)

  const slow = await h2Session(t, proxy.url('tls'))
  let goawayDuringStream = false
  let streaming = true
  slow.on('goaway', () => { if (streaming) goawayDuringStream = true })
  const r = await h2Request(slow, { ':path': '/slow' })
  streaming = false
  t.equal(r.status, 200)
  t.equal(r.text, 'done')
  t.notOk(goawayDuringStream, 'no GOAWAY while a stream is open, however quiet')
  // Then idle: the proxy closes it.
  t.equal(await closed(slow), 'closed', 'the session is closed once idle')

  // A session that never opens a stream is closed too.
  const unused = await h2Session(t, proxy.url('tls'))
  t.equal(await closed(unused), 'closed', 'a session without streams is closed once idle')
})
