/** The sparsifiers' lookup table (simd/*.wat: sparsifyU8), shared by the kernels that run them. */

/** For a u8 bit mask m < 256: the positions of its set bits as 8 u16 (the sparsifier's table). */
export function bitPositionTable(): Uint16Array {
  const table = new Uint16Array(256 * 8);
  for (let m = 0; m < 256; m++) {
    let k = 0;
    for (let bit = 0; bit < 8; bit++) if (m & (1 << bit)) table[m * 8 + k++] = bit;
  }
  return table;
}
