/**
 * The project's async hand-offs, in one place: {@link Wakeup} (a consumer sleeps until a
 * producer says something changed), {@link AsyncQueue} (an unbounded queue one consumer
 * iterates, feeding streaming calls) and {@link Rendezvous} (a value by key, for whoever waits
 * for it or comes within a while: the broker's connection info). Every place that used to
 * hand-roll one (the stdio capture, the broker's waiters, Hipcheck's query stream, the CLI)
 * uses these.
 *
 * @module
 */

/** A wake-up call: consumers wait until a producer calls {@link Wakeup.wake}. */
export class Wakeup {
  readonly #waiting = new Set<() => void>();

  /** Resolves at the next {@link Wakeup.wake}, or when `signal` aborts (at once if it has). */
  wait(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const wake = () => {
        this.#waiting.delete(wake);
        signal?.removeEventListener("abort", wake);
        resolve();
      };
      this.#waiting.add(wake);
      signal?.addEventListener("abort", wake, { once: true });
    });
  }

  /** Wakes every waiting consumer. */
  wake(): void {
    for (const wake of [...this.#waiting]) wake();
  }
}

/** A queue whose iterator waits for the next item until {@link AsyncQueue.end} is called. */
export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #ended = false;
  readonly #wakeup = new Wakeup();

  /** Adds an item; ignored after {@link AsyncQueue.end}. */
  push(item: T): void {
    if (this.#ended) return;
    this.#items.push(item);
    this.#wakeup.wake();
  }

  /** Ends the iteration once the queued items are consumed. */
  end(): void {
    this.#ended = true;
    this.#wakeup.wake();
  }

  /** Whether {@link AsyncQueue.end} was called. */
  get ended(): boolean {
    return this.#ended;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.#items.length > 0) {
        yield this.#items.shift()!;
        continue;
      }
      if (this.#ended) return;
      await this.#wakeup.wait();
    }
  }
}

/**
 * Values by key, each for one taker: a value delivered while someone waits for its key goes
 * to them; otherwise the first one is kept for `keepMs` and then dropped (go-plugin's broker:
 * one slot per id, dropped if nobody dials it within 5 s).
 */
export class Rendezvous<K, V> {
  readonly #keepMs: number;
  readonly #kept = new Map<K, { value: V; expiry: ReturnType<typeof setTimeout> }>();
  readonly #takers = new Map<K, { resolve: (value: V) => void; reject: (err: Error) => void }>();

  /** @param keepMs How long a value nobody waits for is kept. */
  constructor(keepMs: number) {
    this.#keepMs = keepMs;
  }

  /** Hands `value` to the taker of `key`, or keeps it (unless one is kept already). */
  deliver(key: K, value: V): void {
    const taker = this.#takers.get(key);
    if (taker) {
      this.#takers.delete(key);
      taker.resolve(value);
      return;
    }
    if (this.#kept.has(key)) return;
    const expiry = setTimeout(() => this.#kept.delete(key), this.#keepMs);
    this.#kept.set(key, { value, expiry });
  }

  /**
   * The value of `key`, kept or to come; rejects with `timeout()` after `timeoutMs`, and with
   * `abort.aborted()` when `abort.signal` aborts first.
   */
  take(
    key: K,
    timeoutMs: number,
    timeout: () => Error,
    abort?: { signal?: AbortSignal; aborted: () => Error },
  ): Promise<V> {
    const kept = this.#kept.get(key);
    if (kept) {
      clearTimeout(kept.expiry);
      this.#kept.delete(key);
      return Promise.resolve(kept.value);
    }
    const signal = abort?.signal;
    if (signal?.aborted) return Promise.reject(abort!.aborted());
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (this.#takers.get(key) === taker) this.#takers.delete(key);
      };
      const onAbort = () => {
        done();
        reject(abort!.aborted());
      };
      const timer = setTimeout(() => {
        done();
        reject(timeout());
      }, timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      const taker = {
        resolve: (value: V) => {
          done();
          resolve(value);
        },
        reject: (err: Error) => {
          done();
          reject(err);
        },
      };
      this.#takers.set(key, taker);
    });
  }

  /** Drops what is kept and rejects every taker with `errorFor(key)`. */
  close(errorFor: (key: K) => Error): void {
    for (const { expiry } of this.#kept.values()) clearTimeout(expiry);
    this.#kept.clear();
    for (const [key, taker] of this.#takers) taker.reject(errorFor(key));
    this.#takers.clear();
  }
}
