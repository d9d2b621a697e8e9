// `match.pathRegex` and `rewrite.regex` as the loader reads them: kept as
// written, the rewrite's pattern defaulting to the route's, and each mistake
// (a pattern RE2 refuses, a replacement that names no group or could give an
// invalid path, a conflict with pathPrefix or stripPrefix) at its YAML path
// and line, with the reason.
import t from 'tap'
import { parseConfig } from '../../src/config/load.js'
import { BASE, issuesOf, only } from '../helpers/config.js'

/** BASE with one route (line 8); `match` on line 9, `rewrite` on line 10 when given. */
const withRoute = (match: string, rewrite?: string): string =>
  BASE + `routes:\n  - backend: api\n    match: ${match}\n` + (rewrite === undefined ? '' : `    rewrite: ${rewrite}\n`)

const routeOf = (yaml: string) => parseConfig(yaml, 'config.yaml').routes[0]!

t.test('pathRegex and rewrite.regex as written; the pattern defaults to pathRegex', async (t) => {
  const r = routeOf(withRoute(String.raw`{ pathRegex: '^/api/v(\d+)/(?P<rest>.*)$' }`, '{ regex: { replacement: /v$1/$rest } }'))
  t.equal(r.match.pathRegex, String.raw`^/api/v(\d+)/(?P<rest>.*)$`)
  t.equal(r.match.pathPrefix, '/', 'pathPrefix stays at its default')
  t.same(r.rewrite, { regex: { pattern: String.raw`^/api/v(\d+)/(?P<rest>.*)$`, replacement: '/v$1/$rest' } })
  const own = routeOf(withRoute('{ pathPrefix: /old/ }', String.raw`{ regex: { pattern: '/old/(.*)', replacement: /new/$1 } }`))
  t.same(own.rewrite, { regex: { pattern: '/old/(.*)', replacement: '/new/$1' } }, 'a prefix route may rewrite by regex too')
  t.equal(own.match.pathRegex, undefined)
  t.notOk(Object.hasOwn(routeOf(withRoute('{ pathPrefix: /x }')).match, 'pathRegex'), 'absent: no key at all')
  t.same(routeOf(withRoute(String.raw`{ pathRegex: '/x/(.*)' }`, '{ regex: { replacement: "/$${1}y" } }')).rewrite.regex?.replacement,
    '/${1}y', '`$${` in the YAML is a literal `${`: braces for a group followed by a letter')
})

t.test('a pattern RE2 refuses, at its line, saying why', async (t) => {
  only(t, withRoute(String.raw`{ pathRegex: '^/(a+)/\1$' }`), 'routes[0].match.pathRegex', 9,
    /`\\1` is a backreference: Switchyard matches paths with RE2, a linear-time engine \(no pattern can be a ReDoS\), which has no backreferences/)
  only(t, withRoute(`{ pathRegex: '^/(?!admin).*' }`), 'routes[0].match.pathRegex', 9, /`\(\?!` is a lookahead: .*no lookaround/)
  only(t, withRoute(`{ pathRegex: '^/x(?<=x)' }`), 'routes[0].match.pathRegex', 9, /lookbehind/)
  only(t, withRoute(`{ pathRegex: '^/(a' }`), 'routes[0].match.pathRegex', 9, /not a valid RE2 regular expression: missing closing \)/)
  only(t, withRoute(`{ pathRegex: 'api/v\\d+/.*' }`), 'routes[0].match.pathRegex', 9, /can never match: it is matched against the whole path, which starts with `\/` \(write `\^\/api\/v…`\)/)
  only(t, withRoute(`{ pathRegex: '' }`), 'routes[0].match.pathRegex', 9, /expected a regular expression/)
  only(t, withRoute('{ pathRegex: 5 }'), 'routes[0].match.pathRegex', 9, /string/)
  only(t, withRoute('{ pathPrefix: /x }', `{ regex: { pattern: '(a)\\1', replacement: /a } }`), 'routes[0].rewrite.regex.pattern', 10, /backreference/)
})

t.test('block style: the line of the pattern itself', async (t) => {
  const yaml = BASE + [
    'routes:',
    '  - name: a',
    '    backend: api',
    '    match:',
    '      host: a.test',
    "      pathRegex: '/(?=x)'", // line 12
    ''
  ].join('\n')
  only(t, yaml, 'routes[0].match.pathRegex', 12, /lookahead/)
})

t.test('a refused pathRegex is reported once, not again at the rewrite that uses it', async (t) => {
  only(t, withRoute(`{ pathRegex: '/(a' }`, '{ regex: { replacement: /b/$1 } }'), 'routes[0].match.pathRegex', 9, /missing closing \)/)
})

t.test('pathPrefix and pathRegex together are refused', async (t) => {
  only(t, withRoute(`{ pathPrefix: /api/, pathRegex: '/api/.*' }`), 'routes[0].match.pathRegex', 9, /pathPrefix or by pathRegex, not both/)
})

t.test('replacement mistakes, at the replacement', async (t) => {
  const rx = String.raw`{ pathRegex: '/api/v(\d+)/(?P<rest>.*)' }`
  only(t, withRoute(rx, '{ regex: { replacement: v$1 } }'), 'routes[0].rewrite.regex.replacement', 10, /must start with `\/`/)
  only(t, withRoute(rx, '{ regex: { replacement: /v$3 } }'), 'routes[0].rewrite.regex.replacement', 10, /\$3 refers to group 3, but the pattern has only 2/)
  only(t, withRoute(rx, '{ regex: { replacement: /v$nme } }'), 'routes[0].rewrite.regex.replacement', 10, /\$nme names no group .*named groups: rest/)
  only(t, withRoute(rx, '{ regex: { replacement: "/v$1?x=1" } }'), 'routes[0].rewrite.regex.replacement', 10, /may not contain `\?`/)
  only(t, withRoute(rx, '{ regex: { replacement: "/a b" } }'), 'routes[0].rewrite.regex.replacement', 10, /percent-encoded/)
  only(t, withRoute(rx, '{ regex: { pattern: "/x" } }'), 'routes[0].rewrite.regex', 10, /replacement/)
  only(t, withRoute(rx, '{ regex: { replacement: /a, with: 1 } }'), 'routes[0].rewrite.regex.with', 10, /unknown key|not a key|unexpected/i)
  // `${1}` unescaped is an environment variable reference, refused as such before the replacement is read.
  const envRef = issuesOf(withRoute(rx, '{ regex: { replacement: "/v${1}" } }'))
  t.equal(envRef.length, 1)
  t.match(envRef[0], { path: 'routes[0].rewrite.regex.replacement', line: 10, message: /\$\{1\}` is not a reference.*write `\$\$\{` for a literal/ })
})

t.test('rewrite.regex needs a pattern, and gives the whole path alone', async (t) => {
  only(t, withRoute('{ pathPrefix: /x }', '{ regex: { replacement: /y } }'), 'routes[0].rewrite.regex', 10, /needs a `pattern` \(or the route's `match.pathRegex`/)
  only(t, withRoute(`{ pathRegex: '/x/(.*)' }`, '{ stripPrefix: /x, regex: { replacement: /y/$1 } }'), 'routes[0].rewrite.regex', 10,
    /not combined with stripPrefix\/addPrefix/)
  only(t, withRoute(`{ pathRegex: '/x/(.*)' }`, '{ addPrefix: /x, regex: { replacement: /y/$1 } }'), 'routes[0].rewrite.regex', 10, /not combined/)
})

t.test('a rewrite prefix with a dot-segment is refused at its line', async (t) => {
  for (const [prefix, key] of [['/a/../b', 'addPrefix'], ['/a/.', 'addPrefix'], ['/x/..', 'stripPrefix']] as const) {
    only(t, withRoute('{ pathPrefix: /x/ }', `{ ${key}: ${prefix} }`), `routes[0].rewrite.${key}`, 10, /without `\.` or `\.\.` segments/)
  }
  t.equal(routeOf(withRoute('{ pathPrefix: /x/ }', '{ stripPrefix: /x, addPrefix: /.well-known/y }')).rewrite.addPrefix, '/.well-known/y', 'a name that starts with a dot is no dot-segment')
})
