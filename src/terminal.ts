// What the command line prints comes partly from its input: a request pasted
// from a ticket, a config's values, a server's answer. Control characters
// (C0 but tab and newline, DEL, C1) and the bidi overrides are printed as
// \u escapes, so a terminal never runs an escape sequence from them nor
// shows text reordered. Inside a JSON string the escape is the same character.
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g

export function terminalSafe (s: string): string {
  return s.replace(UNSAFE, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
}
