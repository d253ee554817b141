/** The real time moved by `offset` milliseconds: a test turns it forward to expire things. */
export function shiftableClock() {
  return {
    offset: 0,
    now() {
      return new Date(Date.now() + this.offset);
    },
  };
}
