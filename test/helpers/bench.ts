// Shared by the tests of bench/'s pure parts.
import { UsageError } from '../../bench/options.js'

/** The message of the UsageError `fn` throws (anything else fails the test). */
export function usageError (fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    if (err instanceof UsageError) return err.message
    throw err
  }
  throw new Error('no UsageError thrown')
}
