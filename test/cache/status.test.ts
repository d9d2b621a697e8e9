import t from 'tap'
import { cacheStatus } from '../../src/cache/status.js'

t.test('RFC 9211 §2.1 hit with ttl', async (t) => {
  t.equal(cacheStatus('switchyard', { hit: true, ttl: 42 }), 'switchyard; hit; ttl=42')
})

t.test('RFC 9211 §2.2–§2.5 forwarded: fwd, fwd-status, stored, ttl in that order', async (t) => {
  t.equal(cacheStatus('switchyard', { ttl: 60, stored: true, fwdStatus: 200, fwd: 'uri-miss' }), 'switchyard; fwd=uri-miss; fwd-status=200; stored; ttl=60')
  t.equal(cacheStatus('switchyard', { fwd: 'stale', fwdStatus: 304, ttl: 10 }), 'switchyard; fwd=stale; fwd-status=304; ttl=10')
  t.equal(cacheStatus('switchyard', { fwd: 'vary-miss', fwdStatus: 200, stored: false }), 'switchyard; fwd=vary-miss; fwd-status=200', 'false booleans left out')
})

t.test('RFC 9211 §2.6 / §2.8 collapsed and detail (sf-string)', async (t) => {
  t.equal(cacheStatus('switchyard', { fwd: 'miss', collapsed: true, detail: 'x' }), 'switchyard; fwd=miss; collapsed; detail="x"')
  t.equal(cacheStatus('switchyard', { fwd: 'bypass', detail: 'no-store' }), 'switchyard; fwd=bypass; detail="no-store"')
  t.equal(cacheStatus('switchyard', { fwd: 'bypass', detail: 'say "hi" \\ ok' }), 'switchyard; fwd=bypass; detail="say \\"hi\\" \\\\ ok"')
  t.equal(cacheStatus('switchyard', { fwd: 'request', detail: 'café\n' }), 'switchyard; fwd=request; detail="caf??"', 'non-printable / non-ASCII replaced')
})

t.test('RFC 9211 §2.4 ttl is an integer number of seconds, negative when stale', async (t) => {
  t.equal(cacheStatus('c', { hit: true, ttl: -5 }), 'c; hit; ttl=-5')
  t.equal(cacheStatus('c', { hit: true, ttl: 41.9 }), 'c; hit; ttl=41', 'rounded down')
  t.equal(cacheStatus('c', { hit: true, ttl: -0.5 }), 'c; hit; ttl=-1', 'any staleness shows as negative')
  t.equal(cacheStatus('c', { hit: true, ttl: -0 }), 'c; hit; ttl=0')
  t.equal(cacheStatus('c', { hit: true, ttl: Infinity }), 'c; hit', 'non-finite left out')
  t.equal(cacheStatus('c', { hit: true, ttl: 1e20 }), 'c; hit; ttl=999999999999999', 'clamped to 15 digits')
})

t.test('RFC 9211 §2 the cache name is an sf-token when it is one, else an sf-string', async (t) => {
  t.equal(cacheStatus('edge-1.example:80/x', {}), 'edge-1.example:80/x')
  t.equal(cacheStatus('*cdn', { hit: true }), '*cdn; hit')
  t.equal(cacheStatus('my cache', { hit: true }), '"my cache"; hit')
  t.equal(cacheStatus('1cache', { hit: true }), '"1cache"; hit', 'a token cannot start with a digit')
  t.equal(cacheStatus('', { hit: true }), '""; hit')
})

t.test('no parameters: just the name; undefined values are accepted', async (t) => {
  t.equal(cacheStatus('switchyard', {}), 'switchyard')
  t.equal(cacheStatus('switchyard', { hit: undefined, fwd: undefined, ttl: undefined, detail: undefined }), 'switchyard')
})
