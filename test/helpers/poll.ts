// Waiting for a state another process or the event loop reaches by itself:
// polled, with a bound that only stops a hung test (never an assertion on time).

/** Polls `check` every 20 ms until it holds or `ms` have passed; whether it held. */
export async function eventually (check: () => boolean, ms = 3000): Promise<boolean> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (check()) return true
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return check()
}
