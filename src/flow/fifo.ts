/** `Fifo`: the growable ring buffer behind every edge buffer. */

/**
 * A first-in first-out queue over a ring buffer that doubles when full: O(1) push and shift, no
 * allocation per item, and no up-front array as large as a capacity that may be huge.
 */
export class Fifo<T> {
  private slots: (T | undefined)[] = new Array(8);
  private head = 0;
  length = 0;

  push(item: T): void {
    if (this.length === this.slots.length) {
      const grown: (T | undefined)[] = new Array(this.slots.length * 2);
      for (let i = 0; i < this.length; i++) grown[i] = this.slots[(this.head + i) % this.slots.length];
      this.slots = grown;
      this.head = 0;
    }
    this.slots[(this.head + this.length) % this.slots.length] = item;
    this.length++;
  }

  /** Remove and return the oldest item; only call when `length > 0`. */
  shift(): T {
    const item = this.slots[this.head] as T;
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) % this.slots.length;
    this.length--;
    return item;
  }

  clear(): void {
    this.slots = new Array(8);
    this.head = 0;
    this.length = 0;
  }
}
