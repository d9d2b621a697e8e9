import t from 'tap'
import { terminalSafe } from '../src/terminal.js'

t.test('terminalSafe: control characters and bidi overrides as \\u escapes; text, tabs and newlines as they are', async (t) => {
  t.equal(terminalSafe('Listeners\n  web\thttp 127.0.0.1:8080 — café\n'), 'Listeners\n  web\thttp 127.0.0.1:8080 — café\n')
  t.equal(terminalSafe('a\u001b]0;title\u0007b'), 'a\\u001b]0;title\\u0007b', 'OSC: window title')
  t.equal(terminalSafe('\r\u0000\u007f\u0085\u009b2J'), '\\u000d\\u0000\\u007f\\u0085\\u009b2J', 'CR, NUL, DEL and C1 (CSI)')
  t.equal(terminalSafe('abc\u202edcba\u2066'), 'abc\\u202edcba\\u2066', 'bidi overrides')
  const json = JSON.stringify({ path: '/x\u009b\u007f' })
  t.same(JSON.parse(terminalSafe(json)), { path: '/x\u009b\u007f' }, 'inside JSON strings the escape is the same character')
})
