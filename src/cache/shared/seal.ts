// What makes the shared cache safe to keep in Redis: every value sealed with
// AES-256-GCM, every key name an HMAC of the cache key, so that whoever reads
// Redis sees neither URLs nor bodies and cannot forge or move an entry.
//
// Each configured key yields two keys by HKDF (one to seal, one to name), so
// the secret itself is never used twice. The first configured key seals and
// names what is written; every key opens what is read and names where to
// look, so a new key is rolled in without a flush. A sealed value names the
// key that sealed it and is bound to the Redis key it was written under (the
// name is the AEAD's additional data): copied elsewhere, it does not open.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto'
import type { EncryptionKeyConfig } from '../../config/schema.js'

const VERSION = 1
const IV_BYTES = 12
const TAG_BYTES = 16

interface DerivedKey {
  readonly id: string
  readonly idBytes: Buffer
  readonly seal: Buffer
  readonly name: Buffer
}

export class Sealer {
  /** The configured keys' ids, in order (names(text)[i] is under ids[i]). */
  readonly ids: readonly string[]
  readonly #keys: readonly DerivedKey[]
  readonly #byId: ReadonlyMap<string, DerivedKey>

  constructor (keys: readonly EncryptionKeyConfig[]) {
    if (keys.length === 0) throw new Error('the shared cache needs at least one encryption key')
    this.#keys = keys.map((k) => {
      const secret = Buffer.from(k.secret, 'base64')
      if (secret.length !== 32) throw new Error(`encryption key ${k.id} (${k.from}) is not 32 bytes`)
      return {
        id: k.id,
        idBytes: Buffer.from(k.id, 'utf8'),
        seal: Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'switchyard cache seal v1', 32)),
        name: Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'switchyard cache name v1', 32))
      }
    })
    this.#byId = new Map(this.#keys.map((k) => [k.id, k]))
    this.ids = this.#keys.map((k) => k.id)
  }

  /** The name `text` is written under (first key), then the names it may have been written under by older keys. */
  names (text: string): string[] {
    return this.#keys.map((k) => mac(k.name, text))
  }

  /** The name under the writing key only. */
  name (text: string): string {
    return mac(this.#keys[0]!.name, text)
  }

  /** `plain` sealed with the first key, bound to `name` (the Redis key it goes under). */
  seal (name: string, plain: Buffer): Buffer {
    const k = this.#keys[0]!
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', k.seal, iv)
    cipher.setAAD(Buffer.from(name, 'utf8'))
    const body = Buffer.concat([cipher.update(plain), cipher.final()])
    return Buffer.concat([Buffer.from([VERSION, k.idBytes.length]), k.idBytes, iv, cipher.getAuthTag(), body])
  }

  /** The id of the key that sealed `sealed`, one of ours or not; undefined when it is not a value of this format. */
  keyId (sealed: Buffer): string | undefined {
    if (sealed.length < 2 || sealed[0] !== VERSION || sealed.length < 2 + sealed[1]! + IV_BYTES + TAG_BYTES) return undefined
    return sealed.subarray(2, 2 + sealed[1]!).toString('utf8')
  }

  /** The plaintext, or undefined when `sealed` is not something one of our keys sealed under `name`. */
  open (name: string, sealed: Buffer): Buffer | undefined {
    if (sealed.length < 2 || sealed[0] !== VERSION) return undefined
    const idLength = sealed[1]!
    const head = 2 + idLength
    if (sealed.length < head + IV_BYTES + TAG_BYTES) return undefined
    const k = this.#byId.get(sealed.subarray(2, head).toString('utf8'))
    if (k === undefined) return undefined
    try {
      const decipher = createDecipheriv('aes-256-gcm', k.seal, sealed.subarray(head, head + IV_BYTES))
      decipher.setAAD(Buffer.from(name, 'utf8'))
      decipher.setAuthTag(sealed.subarray(head + IV_BYTES, head + IV_BYTES + TAG_BYTES))
      return Buffer.concat([decipher.update(sealed.subarray(head + IV_BYTES + TAG_BYTES)), decipher.final()])
    } catch {
      // Tampered, truncated, or sealed for another name: never served.
      return undefined
    }
  }
}

function mac (key: Buffer, text: string): string {
  // 128 bits are plenty to tell cache keys apart, and keep Redis keys short.
  return createHmac('sha256', key).update(text, 'utf8').digest('base64url').slice(0, 22)
}
