/**
 * An unbounded async queue: producers push, one consumer iterates. Used to feed outgoing
 * messages into a client-streaming or bidirectional call.
 *
 * @module
 */

/** A queue whose iterator waits for the next item until {@link AsyncQueue.end} is called. */
export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #ended = false;
  #wake: (() => void) | undefined;

  /** Adds an item; ignored after {@link AsyncQueue.end}. */
  push(item: T): void {
    if (this.#ended) return;
    this.#items.push(item);
    this.#wake?.();
  }

  /** Ends the iteration once the queued items are consumed. */
  end(): void {
    this.#ended = true;
    this.#wake?.();
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
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }
}
