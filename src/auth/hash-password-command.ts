// `switchyard hash-password`: the password from stdin (one line, its newline
// dropped) or, on a terminal, typed twice at a prompt that does not echo;
// prints its scrypt hash for a route's basicAuth.users[].passwordHash.
// The streams come from main.ts, the only file that touches `process`.
import type { Readable } from 'node:stream'
import { hashPassword } from './password.js'

export interface HashPasswordIo {
  readonly stdin: Readable & { isTTY?: boolean, setRawMode?: (on: boolean) => unknown }
  readonly stdout: (s: string) => void
  readonly stderr: (s: string) => void
}

/** What stdin may hold: one line, a password (passphrases included), far below this. */
export const MAX_STDIN_BYTES = 64 * 1024

export async function hashPasswordCommand (io: HashPasswordIo): Promise<number> {
  let password: string
  if (io.stdin.isTTY === true && io.stdin.setRawMode !== undefined) {
    const first = await prompt(io, 'Password: ')
    if (first === undefined) return 130
    const again = await prompt(io, 'Repeat: ')
    if (again === undefined) return 130
    if (again !== first) {
      io.stderr('switchyard: the passwords differ\n')
      return 1
    }
    password = first
  } else {
    const chunks: Buffer[] = []
    let size = 0
    for await (const c of io.stdin) {
      const b = Buffer.from(c as Buffer)
      size += b.length
      // Bounded: `hash-password < /dev/zero` (or a wrong file) must end, not fill memory.
      if (size > MAX_STDIN_BYTES) {
        io.stderr(`switchyard: more than ${MAX_STDIN_BYTES} bytes on stdin; expected one line (the password)\n`)
        return 1
      }
      chunks.push(b)
    }
    // One line: its terminator is not part of the password (`echo pw | switchyard hash-password`).
    password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
    if (password.includes('\n')) {
      io.stderr('switchyard: expected one line on stdin (the password)\n')
      return 1
    }
  }
  if (password === '') {
    io.stderr('switchyard: empty password\n')
    return 1
  }
  io.stdout(hashPassword(password) + '\n')
  return 0
}

/** One line typed without echo; undefined on Ctrl-C or Ctrl-D. */
function prompt (io: HashPasswordIo, label: string): Promise<string | undefined> {
  io.stderr(label)
  const stdin = io.stdin
  stdin.setRawMode!(true)
  stdin.resume()
  return new Promise((resolve) => {
    let line = ''
    const done = (v: string | undefined): void => {
      stdin.off('data', onData)
      stdin.setRawMode!(false)
      stdin.pause()
      io.stderr('\n')
      resolve(v)
    }
    const onData = (chunk: Buffer): void => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(line)
        if (ch === '\u0003' || ch === '\u0004') return done(undefined)
        if (ch === '\u007f' || ch === '\b') line = [...line].slice(0, -1).join('')
        else line += ch
      }
    }
    stdin.on('data', onData)
  })
}
