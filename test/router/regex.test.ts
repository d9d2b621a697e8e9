// Path patterns on re2js: compiled once, matched against the whole path,
// refused with a reason when RE2 lacks the feature, replacements parsed at
// load and applied with the query kept.
import t from 'tap'
import { applyRegexRewrite, compilePathRegex, literalPrefixOf, parseReplacement, type PathRegex, type RegexRewrite } from '../../src/router/regex.js'

function compile (source: string): PathRegex {
  const re = compilePathRegex(source)
  if ('error' in re) throw new Error(re.error)
  return re
}

function rewrite (pattern: string, replacement: string): RegexRewrite {
  const re = compile(pattern)
  const parts = parseReplacement(replacement, re)
  if ('error' in parts) throw new Error(parts.error)
  return { pattern: re, replacement: parts, replacementSource: replacement }
}

t.test('a pattern matches the whole path, written anchors or not', async (t) => {
  for (const source of ['/api/v\\d+/.*', '^/api/v\\d+/.*', '^/api/v\\d+/.*$']) {
    const re = compile(source)
    t.ok(re.test('/api/v2/users'), `${source} takes /api/v2/users`)
    t.notOk(re.test('/x/api/v2/users'), `${source}: not in the middle`)
    t.notOk(re.test('/api/v2'), `${source}: all of it`)
  }
  const re = compile('/users/\\d+')
  t.notOk(re.test('/users/12/delete'), 'no trailing remainder: implicitly $')
  t.notOk(re.test('/old/users/12'), 'no leading remainder: implicitly ^')
  t.ok(compile('/a|/b').test('/b'), 'a top-level alternation is anchored as a whole')
  t.notOk(compile('/a|/b').test('/b/c'))
  t.ok(compile('(?i)/API/.*').test('/api/x'), 'flags are RE2\'s')
})

t.test('captures, numbered and named', async (t) => {
  const re = compile('^/api/v(\\d+)/(?P<rest>.*)$')
  t.same(re.exec('/api/v2/users/7'), ['/api/v2/users/7', '2', 'users/7'])
  t.equal(re.exec('/api/vX/users'), undefined)
  t.equal(re.groupCount, 2)
  t.same(re.names, { rest: 2 })
  t.equal(re.describeCaptures('/api/v2/users'), '$1=2, $rest=users')
  t.equal(compile('/(a)?b').describeCaptures('/b'), '$1=(none)', 'a group that took no part')
  t.equal(compile('/x').describeCaptures('/x'), '')
})

t.test('what RE2 does not do is refused, saying why', async (t) => {
  const refused = (source: string): string => {
    const re = compilePathRegex(source)
    if (!('error' in re)) throw new Error(`${source} compiled`)
    return re.error
  }
  t.match(refused('^/(a+)/\\1$'), /`\\1` is a backreference: .*RE2, a linear-time engine \(no pattern can be a ReDoS\), which has no backreferences/)
  t.match(refused('^/(?=admin)'), /`\(\?=` is a lookahead: .*no lookaround/)
  t.match(refused('^/(?!admin).*'), /`\(\?!` is a lookahead/)
  t.match(refused('^/x(?<=x)'), /`\(\?<=` is a lookbehind/)
  t.match(refused('^/x(?<!y)'), /`\(\?<!` is a lookbehind/)
  t.match(refused('^/(a'), /^not a valid RE2 regular expression: missing closing \)/)
  t.match(refused('a**'), /invalid nested repetition/)
  t.notOk('error' in compilePathRegex('/a\\\\1'), 'an escaped backslash then 1 is no backreference')
})

t.test('the literal prefix: what every match starts with', async (t) => {
  const cases: Array<[string, string]> = [
    ['^/api/v(\\d+)/(.*)$', '/api/v'],
    ['/static/.*', '/static/'],
    ['^/api/v1?', '/api/v'],
    ['/ab*', '/a'],
    ['/ab+', '/ab'],
    ['/a{2}', '/'],
    ['/a|/b', ''],
    ['/x/(a|b)', '/x/'],
    ['/a[|]b', '/a'],
    ['(?i)/x', ''],
    ['\\/x', ''],
    ['', '']
  ]
  for (const [source, prefix] of cases) t.equal(literalPrefixOf(source), prefix, source)
  // Sound: whatever matches starts with the prefix (checked on a spread of paths).
  const paths = ['/', '/a', '/aa', '/ab', '/abb', '/api', '/api/v', '/api/v1', '/api/v2/x', '/static/', '/static/a.css', '/x/a', '/x/b', '/b', '/API/v1', '/a|b']
  for (const [source] of cases) {
    const re = compilePathRegex(source)
    if ('error' in re) continue
    for (const p of paths) if (re.exec(p) !== undefined) t.ok(p.startsWith(re.literalPrefix), `${source} matched ${p}, which starts with ${JSON.stringify(re.literalPrefix)}`)
  }
})

t.test('replacements: $1, $name, ${…}, $$, checked against the pattern', async (t) => {
  const re = compile('^/api/v(\\d+)/(?P<rest>.*)$')
  t.same(parseReplacement('/v$1/$rest', re), ['/v', 1, '/', 2])
  t.same(parseReplacement('/v${1}0/${rest}', re), ['/v', 1, '0/', 2], 'braces end a reference')
  t.same(parseReplacement('/a$$b$1x', re), ['/a$b', 1, 'x'], '$$ is a $; $1x is group 1 then x')
  t.same(parseReplacement('/fixed', re), ['/fixed'])
  const error = (text: string): string => {
    const r = parseReplacement(text, re)
    if (!('error' in r)) throw new Error(`${text} accepted`)
    return r.error
  }
  t.match(error('v$1'), /must start with `\/`/)
  t.match(error('$1'), /must start with `\/`/)
  t.match(error('/a$3'), /\$3 refers to group 3, but the pattern has only 2/)
  t.match(error('/a$nope'), /\$nope names no group of the pattern \(named groups: rest\)/)
  t.match(error('/a$'), /`\$` must be followed by a group/)
  t.match(error('/a${1'), /`\$` must be followed by a group/)
  t.match(error('/a?b=1'), /may not contain `\?`.*query is kept/)
  t.match(error('/a#b'), /may not contain `#`/)
  t.match(error('/a b'), /the character " " \(write it percent-encoded\)/)
  t.match(error('/a\r\nx: y'), /the character "\\r"/)
  t.match(parseReplacement('/$1', compile('/x')), { error: /the pattern has no groups/ })
})

t.test('applying a rewrite: whole path replaced, query kept, no match = unchanged', async (t) => {
  const rw = rewrite('^/api/v(\\d+)/(?P<rest>.*)$', '/v$1/$rest')
  t.equal(applyRegexRewrite(rw, '/api/v2/users'), '/v2/users')
  t.equal(applyRegexRewrite(rw, '/api/v2/users?x=1&y=/api/v3/z'), '/v2/users?x=1&y=/api/v3/z', 'the query is kept and not rewritten')
  t.equal(applyRegexRewrite(rw, '/api/v2/?'), '/v2/?', 'an empty query too')
  t.equal(applyRegexRewrite(rw, '/other?x=1'), '/other?x=1', 'a path it does not match is sent as it is')
  t.equal(applyRegexRewrite(rewrite('/(a)?b(c)?', '/x$1-$2'), '/b'), '/x-', 'a group that took no part is empty')
  // A replacement the loader refuses, built by hand: the result is checked, not trusted.
  const bad: RegexRewrite = { pattern: compile('/(.*)'), replacement: [1], replacementSource: '$1' }
  t.equal(applyRegexRewrite(bad, '/x?q'), undefined, 'a result not starting with / is refused')
  const space: RegexRewrite = { pattern: compile('/(.*)'), replacement: ['/a b/', 1], replacementSource: '/a b/$1' }
  t.equal(applyRegexRewrite(space, '/x'), undefined, 'a result with a space is refused')
})

t.test('a pattern that backtracking engines take exponential time on stays linear', async (t) => {
  // Under a backtracking engine `(a+)+$` on 50 KB of `a` and one `b` never ends; RE2 answers at once.
  const path = '/' + 'a'.repeat(50 * 1024) + 'b'
  for (const source of ['/(a+)+$', '/(a|a)*$', '/(a*)*c', '/(.*a){20}']) {
    const re = compile(source)
    t.equal(re.test(path), false, `${source} on a 50 KB path`)
    t.equal(re.exec(path), undefined)
  }
  t.equal(compile('/(a+)+b').test(path), true, 'and a match is found as fast')
})

t.test('hostile paths: any UTF-16 string (lone surrogates, controls, obs-text) is matched or not, never thrown on', async (t) => {
  const re = compile('^/api/v(\\d+)/(?P<rest>.*)$')
  const rw: RegexRewrite = { pattern: re, replacement: ['/v', 1, '/', 2], replacementSource: '/v$1/$rest' }
  let seed = 7
  const next = (): number => { seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31; return seed }
  let matched = 0
  let refusedOrClean = 0
  for (let i = 0; i < 5000; i++) {
    let s = '/api/v1/'
    for (let j = 0; j < 16; j++) s += String.fromCharCode((next() >> 8) % 0x10000)
    const groups = re.exec(s)
    if (groups !== undefined) matched++
    // A result with a character a request target cannot carry is refused, never passed on.
    const out = applyRegexRewrite(rw, s)
    if (out !== undefined && out !== s) {
      refusedOrClean++
      if (/[^\x21-\x7e\x80-\xff]/.test(out)) t.fail(`${JSON.stringify(out)} passed on`)
    } else if (out === undefined) refusedOrClean++
  }
  t.equal(refusedOrClean, matched, 'every match was rewritten to target bytes or refused')
  t.ok(matched > 4000, `nearly all match (${matched} of 5000): \`.\` takes any character but a newline`)
  t.equal(re.exec('/api/v1/a\nb'), undefined, 'not a newline')
  t.same(re.exec('/api/v1/\ud800x'), ['/api/v1/\ud800x', '1', '\ud800x'], 'a lone surrogate is one more character')
})
