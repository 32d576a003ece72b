;; Softmax-regression inner loops in WebAssembly SIMD (f32x4), over sparse rows.
;;
;; `npm run build:wasm` assembles this file into softmaxRegressionWasm.ts; ../softmaxRegression.ts
;; lays out the memory and drives it. Every pointer is a byte offset into this module's memory. Shapes:
;;   x       B × width raw values, row-major: u8 (sparsifyU8) or f32 (sparsifyF32)
;;   scale   width f32: a non-zero raw value v of feature j contributes v·scale[j]; the dense part
;;           of the features (shift, bias) goes through rowsDot/rowsAxpy once per batch
;;   W, T    rows × Cp f32, row-major; Cp = classes padded to a multiple of 4, pad columns kept 0
;;   pos     u16 scratch, B·width + 16 entries; bytes  u8 scratch, B·width + 16
;;   idx     per non-zero: the byte offset of its weight row, j·Cp·4
;;   val     per non-zero: its feature value v·scale[j]
;;   offs    B+1 i32: row b's non-zeros are idx/val[offs[b] … offs[b+1])
;;   logits, delta  B × Cp f32; base, vec  Cp f32; coef  rows f32
;; MNIST rows are ~80% zeros, so the multiply-adds follow the non-zeros, not the width. Cp = 12
;; (10 classes) has an unrolled path holding three f32x4 accumulators in registers; other widths
;; loop over their f32x4 columns. f32x4 arithmetic is IEEE with no fused multiply-add, so results
;; are the same on every machine and a resumed run reproduces the weights bit for bit.
(module
  (memory (export "memory") 1)

  ;; The non-zeros of u8 rows x[b] (b < B), appended from offs[0] = 0; returns the total. Each
  ;; goes to pos (its position), idx and val, and with $keep to bytes (its byte, for a kept set:
  ;; ../packedRows.ts).
  ;; 16 bytes at a time: a 16-bit mask of the non-zero lanes; for each half m of it, lut[m] (8 u16:
  ;; the positions of the set bits of m, m < 256) compacts the positions, and i8x16.swizzle the
  ;; bytes; 8 entries are written and the write position advances by popcnt(m), so the entries
  ;; past it are overwritten next (the buffers have 8 entries of slack). No branch depends on where
  ;; the non-zeros lie beyond skipping all-zero chunks. Values are scaled by $uniform when every
  ;; feature shares one scale; with $uniform = 0 each is multiplied by its own scale[j] afterwards.
  (func (export "sparsifyU8")
    (param $x i32) (param $B i32) (param $width i32) (param $scale i32) (param $uniform f32)
    (param $rowBytes i32) (param $lut i32) (param $pos i32) (param $idx i32) (param $val i32)
    (param $bytes i32) (param $keep i32) (param $offs i32) (result i32)
    (local $b i32) (local $row i32) (local $i i32) (local $m i32) (local $h i32) (local $n i32)
    (local $k i32) (local $end16 i32) (local $chunk v128) (local $packed v128) (local $rel v128) (local $at v128)
    (local $wide v128) (local $s v128) (local $rb v128) (local $sf f32)
    (local.set $end16 (i32.and (local.get $width) (i32.const -16)))
    (local.set $sf (select (local.get $uniform) (f32.const 1) (f32.gt (local.get $uniform) (f32.const 0))))
    (local.set $s (f32x4.splat (local.get $sf)))
    (local.set $rb (i32x4.splat (local.get $rowBytes)))
    (i32.store (local.get $offs) (i32.const 0))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $b) (local.get $B)))
        (local.set $row (i32.add (local.get $x) (i32.mul (local.get $b) (local.get $width))))
        (local.set $k (local.get $n))
        (local.set $i (i32.const 0))
        (block $chunksDone
          (loop $chunks
            (br_if $chunksDone (i32.ge_u (local.get $i) (local.get $end16)))
            (local.set $chunk (v128.load (i32.add (local.get $row) (local.get $i))))
            (local.set $m (i8x16.bitmask (i8x16.ne (local.get $chunk) (v128.const i32x4 0 0 0 0))))
            (if (local.get $m)
              (then
                ;; low half: lanes 0-7
                (local.set $h (i32.and (local.get $m) (i32.const 255)))
                (local.set $rel (v128.load (i32.add (local.get $lut) (i32.shl (local.get $h) (i32.const 4)))))
                (local.set $at (i16x8.add (local.get $rel) (i16x8.splat (local.get $i))))
                (v128.store (i32.add (local.get $pos) (i32.shl (local.get $n) (i32.const 1))) (local.get $at))
                (v128.store (i32.add (local.get $idx) (i32.shl (local.get $n) (i32.const 2)))
                  (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $at)) (local.get $rb)))
                (v128.store offset=16 (i32.add (local.get $idx) (i32.shl (local.get $n) (i32.const 2)))
                  (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $at)) (local.get $rb)))
                (local.set $packed
                  (i8x16.swizzle (local.get $chunk) (i8x16.narrow_i16x8_u (local.get $rel) (local.get $rel))))
                (if (local.get $keep)
                  (then
                    (i64.store (i32.add (local.get $bytes) (local.get $n)) (i64x2.extract_lane 0 (local.get $packed)))))
                (local.set $wide (i16x8.extend_low_i8x16_u (local.get $packed)))
                (v128.store (i32.add (local.get $val) (i32.shl (local.get $n) (i32.const 2)))
                  (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_u (local.get $wide))) (local.get $s)))
                (v128.store offset=16 (i32.add (local.get $val) (i32.shl (local.get $n) (i32.const 2)))
                  (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_u (local.get $wide))) (local.get $s)))
                (local.set $n (i32.add (local.get $n) (i32.popcnt (local.get $h))))
                ;; high half: lanes 8-15
                (local.set $h (i32.shr_u (local.get $m) (i32.const 8)))
                (local.set $rel (v128.load (i32.add (local.get $lut) (i32.shl (local.get $h) (i32.const 4)))))
                (local.set $at (i16x8.add (local.get $rel) (i16x8.splat (i32.add (local.get $i) (i32.const 8)))))
                (v128.store (i32.add (local.get $pos) (i32.shl (local.get $n) (i32.const 1))) (local.get $at))
                (v128.store (i32.add (local.get $idx) (i32.shl (local.get $n) (i32.const 2)))
                  (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $at)) (local.get $rb)))
                (v128.store offset=16 (i32.add (local.get $idx) (i32.shl (local.get $n) (i32.const 2)))
                  (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $at)) (local.get $rb)))
                (local.set $packed
                  (i8x16.swizzle
                    (local.get $chunk)
                    (i8x16.add
                      (i8x16.narrow_i16x8_u (local.get $rel) (local.get $rel))
                      (v128.const i8x16 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8))))
                (if (local.get $keep)
                  (then
                    (i64.store (i32.add (local.get $bytes) (local.get $n)) (i64x2.extract_lane 0 (local.get $packed)))))
                (local.set $wide (i16x8.extend_low_i8x16_u (local.get $packed)))
                (v128.store (i32.add (local.get $val) (i32.shl (local.get $n) (i32.const 2)))
                  (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_u (local.get $wide))) (local.get $s)))
                (v128.store offset=16 (i32.add (local.get $val) (i32.shl (local.get $n) (i32.const 2)))
                  (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_u (local.get $wide))) (local.get $s)))
                (local.set $n (i32.add (local.get $n) (i32.popcnt (local.get $h))))))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (br $chunks)))
        ;; the last width mod 16 values: write the entry, keep it if the value is non-zero
        (block $tailDone
          (loop $tail
            (br_if $tailDone (i32.ge_u (local.get $i) (local.get $width)))
            (i32.store16 (i32.add (local.get $pos) (i32.shl (local.get $n) (i32.const 1))) (local.get $i))
            (i32.store8 (i32.add (local.get $bytes) (local.get $n))
              (i32.load8_u (i32.add (local.get $row) (local.get $i))))
            (i32.store (i32.add (local.get $idx) (i32.shl (local.get $n) (i32.const 2)))
              (i32.mul (local.get $i) (local.get $rowBytes)))
            (f32.store (i32.add (local.get $val) (i32.shl (local.get $n) (i32.const 2)))
              (f32.mul
                (f32.convert_i32_u (i32.load8_u (i32.add (local.get $row) (local.get $i))))
                (local.get $sf)))
            (local.set $n
              (i32.add
                (local.get $n)
                (i32.ne (i32.load8_u (i32.add (local.get $row) (local.get $i))) (i32.const 0))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $tail)))
        ;; per-feature scales
        (if (f32.le (local.get $uniform) (f32.const 0))
          (then
            (block $scaled
              (loop $each
                (br_if $scaled (i32.ge_u (local.get $k) (local.get $n)))
                (f32.store (i32.add (local.get $val) (i32.shl (local.get $k) (i32.const 2)))
                  (f32.mul
                    (f32.load (i32.add (local.get $val) (i32.shl (local.get $k) (i32.const 2))))
                    (f32.load
                      (i32.add
                        (local.get $scale)
                        (i32.shl
                          (i32.load16_u (i32.add (local.get $pos) (i32.shl (local.get $k) (i32.const 1))))
                          (i32.const 2))))))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $each)))))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (i32.store (i32.add (local.get $offs) (i32.shl (local.get $b) (i32.const 2))) (local.get $n))
        (br $rows)))
    (local.get $n))

    ;; The same for f32 rows (IDX files of wider dtypes), 4 values at a time and without the table:
  ;; such data is rare, and not worth a second one.
  (func (export "sparsifyF32")
    (param $x i32) (param $B i32) (param $width i32) (param $scale i32) (param $rowBytes i32)
    (param $idx i32) (param $val i32) (param $offs i32) (result i32)
    (local $b i32) (local $row i32) (local $i i32) (local $j i32) (local $m i32) (local $n i32)
    (local $end4 i32) (local $v f32)
    (local.set $end4 (i32.and (local.get $width) (i32.const -4)))
    (i32.store (local.get $offs) (i32.const 0))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $b) (local.get $B)))
        (local.set $row
          (i32.add (local.get $x) (i32.shl (i32.mul (local.get $b) (local.get $width)) (i32.const 2))))
        (local.set $i (i32.const 0))
        (block $chunksDone
          (loop $chunks
            (br_if $chunksDone (i32.ge_u (local.get $i) (local.get $end4)))
            (local.set $m
              (i32x4.bitmask
                (f32x4.ne
                  (v128.load (i32.add (local.get $row) (i32.shl (local.get $i) (i32.const 2))))
                  (v128.const f32x4 0 0 0 0))))
            (block $bitsDone
              (loop $bits
                (br_if $bitsDone (i32.eqz (local.get $m)))
                (local.set $j (i32.add (local.get $i) (i32.ctz (local.get $m))))
                (i32.store
                  (i32.add (local.get $idx) (i32.shl (local.get $n) (i32.const 2)))
                  (i32.mul (local.get $j) (local.get $rowBytes)))
                (f32.store
                  (i32.add (local.get $val) (i32.shl (local.get $n) (i32.const 2)))
                  (f32.mul
                    (f32.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
                    (f32.load (i32.add (local.get $scale) (i32.shl (local.get $j) (i32.const 2))))))
                (local.set $n (i32.add (local.get $n) (i32.const 1)))
                (local.set $m (i32.and (local.get $m) (i32.sub (local.get $m) (i32.const 1))))
                (br $bits)))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $chunks)))
        (block $tailDone
          (loop $tail
            (br_if $tailDone (i32.ge_u (local.get $i) (local.get $width)))
            (local.set $v (f32.load (i32.add (local.get $row) (i32.shl (local.get $i) (i32.const 2)))))
            (if (f32.ne (local.get $v) (f32.const 0))
              (then
                (i32.store
                  (i32.add (local.get $idx) (i32.shl (local.get $n) (i32.const 2)))
                  (i32.mul (local.get $i) (local.get $rowBytes)))
                (f32.store
                  (i32.add (local.get $val) (i32.shl (local.get $n) (i32.const 2)))
                  (f32.mul
                    (local.get $v)
                    (f32.load (i32.add (local.get $scale) (i32.shl (local.get $i) (i32.const 2))))))
                (local.set $n (i32.add (local.get $n) (i32.const 1)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $tail)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (i32.store (i32.add (local.get $offs) (i32.shl (local.get $b) (i32.const 2))) (local.get $n))
        (br $rows)))
    (local.get $n))

  ;; The n non-zeros sparsifyU8 wrote to pos and bytes for a kept set (../packedRows.ts), widened
  ;; as it widens them: idx[k] = pos[k]·rowBytes and val[k] = bytes[k]·$uniform, or with
  ;; $uniform = 0 bytes[k]·scale[pos[k]]; the same f32 products, so the logits come out the same
  ;; to the bit. 8 at a time: up to 7 entries past n are
  ;; read and written (the buffers have 8 entries of slack).
  (func $expandU8 (export "expandU8")
    (param $pos i32) (param $bytes i32) (param $n i32) (param $rowBytes i32) (param $scale i32)
    (param $uniform f32) (param $idx i32) (param $val i32)
    (local $k i32) (local $at v128) (local $wide v128) (local $s v128) (local $rb v128)
    (local.set $s
      (f32x4.splat
        (select (local.get $uniform) (f32.const 1) (f32.gt (local.get $uniform) (f32.const 0)))))
    (local.set $rb (i32x4.splat (local.get $rowBytes)))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $k) (local.get $n)))
        (local.set $at (v128.load (i32.add (local.get $pos) (i32.shl (local.get $k) (i32.const 1)))))
        (v128.store (i32.add (local.get $idx) (i32.shl (local.get $k) (i32.const 2)))
          (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $at)) (local.get $rb)))
        (v128.store offset=16 (i32.add (local.get $idx) (i32.shl (local.get $k) (i32.const 2)))
          (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $at)) (local.get $rb)))
        (local.set $wide
          (i16x8.extend_low_i8x16_u (v128.load64_zero (i32.add (local.get $bytes) (local.get $k)))))
        (v128.store (i32.add (local.get $val) (i32.shl (local.get $k) (i32.const 2)))
          (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_u (local.get $wide))) (local.get $s)))
        (v128.store offset=16 (i32.add (local.get $val) (i32.shl (local.get $k) (i32.const 2)))
          (f32x4.mul (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_u (local.get $wide))) (local.get $s)))
        (local.set $k (i32.add (local.get $k) (i32.const 8)))
        (br $each)))
    ;; per-feature scales
    (if (f32.le (local.get $uniform) (f32.const 0))
      (then
        (local.set $k (i32.const 0))
        (block $scaled
          (loop $each
            (br_if $scaled (i32.ge_u (local.get $k) (local.get $n)))
            (f32.store (i32.add (local.get $val) (i32.shl (local.get $k) (i32.const 2)))
              (f32.mul
                (f32.load (i32.add (local.get $val) (i32.shl (local.get $k) (i32.const 2))))
                (f32.load
                  (i32.add
                    (local.get $scale)
                    (i32.shl
                      (i32.load16_u (i32.add (local.get $pos) (i32.shl (local.get $k) (i32.const 1))))
                      (i32.const 2))))))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $each))))))

  ;; Rows b < B as a row kept in place holds itself (../reusedRows.ts): row b at $src + bounds[b],
  ;; its n positions (u16) then its n bytes, n = (bounds[b+1] - bounds[b]) / 3 rounded down (a
  ;; block of odd length ends in a byte of padding). Each row is widened as expandU8 widens it, its
  ;; entries written from entry $at on: offs[0] = $at and offs[b+1] = the end of row b's entries,
  ;; which is returned for the last. The same entries as sparsifyU8 finds in the rows' bytes.
  (func (export "expandRows")
    (param $B i32) (param $src i32) (param $bounds i32) (param $rowBytes i32) (param $scale i32)
    (param $uniform f32) (param $idx i32) (param $val i32) (param $offs i32) (param $at i32) (result i32)
    (local $b i32) (local $f i32) (local $n i32)
    (i32.store (local.get $offs) (local.get $at))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $b) (local.get $B)))
        (local.set $f (i32.load (i32.add (local.get $bounds) (i32.shl (local.get $b) (i32.const 2)))))
        (local.set $n
          (i32.div_u
            (i32.sub
              (i32.load offset=4 (i32.add (local.get $bounds) (i32.shl (local.get $b) (i32.const 2))))
              (local.get $f))
            (i32.const 3)))
        (call $expandU8
          (i32.add (local.get $src) (local.get $f))
          (i32.add (i32.add (local.get $src) (local.get $f)) (i32.shl (local.get $n) (i32.const 1)))
          (local.get $n) (local.get $rowBytes) (local.get $scale) (local.get $uniform)
          (i32.add (local.get $idx) (i32.shl (local.get $at) (i32.const 2)))
          (i32.add (local.get $val) (i32.shl (local.get $at) (i32.const 2))))
        (local.set $at (i32.add (local.get $at) (local.get $n)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (i32.store (i32.add (local.get $offs) (i32.shl (local.get $b) (i32.const 2))) (local.get $at))
        (br $rows)))
    (local.get $at))

  ;; The other way round: rows b < B as sparsifyU8 left them with $keep (row b's positions and
  ;; bytes at entries offs[b] ... offs[b+1]), each written to $out + bounds[b] as a row kept in place
  ;; holds itself (see expandRows); bounds[0] = 0, and each block after the first starts at an even
  ;; offset. Returns the bytes written.
  (func (export "interleaveRows")
    (param $B i32) (param $pos i32) (param $bytes i32) (param $offs i32) (param $out i32)
    (param $bounds i32) (result i32)
    (local $b i32) (local $f i32) (local $n i32) (local $at i32)
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $b) (local.get $B)))
        (local.set $f (i32.load (i32.add (local.get $offs) (i32.shl (local.get $b) (i32.const 2)))))
        (local.set $n
          (i32.sub
            (i32.load offset=4 (i32.add (local.get $offs) (i32.shl (local.get $b) (i32.const 2))))
            (local.get $f)))
        (i32.store (i32.add (local.get $bounds) (i32.shl (local.get $b) (i32.const 2))) (local.get $at))
        (memory.copy
          (i32.add (local.get $out) (local.get $at))
          (i32.add (local.get $pos) (i32.shl (local.get $f) (i32.const 1)))
          (i32.shl (local.get $n) (i32.const 1)))
        (memory.copy
          (i32.add (i32.add (local.get $out) (local.get $at)) (i32.shl (local.get $n) (i32.const 1)))
          (i32.add (local.get $bytes) (local.get $f))
          (local.get $n))
        (local.set $at
          (i32.add (local.get $at) (i32.and (i32.add (i32.mul (local.get $n) (i32.const 3)) (i32.const 1)) (i32.const -2))))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $rows)))
    (i32.store (i32.add (local.get $bounds) (i32.shl (local.get $B) (i32.const 2))) (local.get $at))
    (local.get $at))

  ;; out[b, :] = base + Σ_k val[k] · W[idx[k], :] over row b's non-zeros, for b < B.
  (func (export "logits")
    (param $B i32) (param $W i32) (param $Cp i32) (param $base i32) (param $idx i32) (param $val i32)
    (param $offs i32) (param $out i32)
    (local $b i32) (local $k i32) (local $end i32) (local $w i32) (local $s v128) (local $v i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $rowOut i32) (local $stride i32)
    (local.set $stride (i32.shl (local.get $Cp) (i32.const 2)))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $b) (local.get $B)))
        (local.set $rowOut (i32.add (local.get $out) (i32.mul (local.get $b) (local.get $stride))))
        (local.set $end
          (i32.load (i32.add (local.get $offs) (i32.shl (i32.add (local.get $b) (i32.const 1)) (i32.const 2)))))
        (if (i32.eq (local.get $Cp) (i32.const 12))
          (then
            (local.set $k (i32.load (i32.add (local.get $offs) (i32.shl (local.get $b) (i32.const 2)))))
            (local.set $a0 (v128.load offset=0 (local.get $base)))
            (local.set $a1 (v128.load offset=16 (local.get $base)))
            (local.set $a2 (v128.load offset=32 (local.get $base)))
            (block $done
              (loop $nz
                (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
                (local.set $w
                  (i32.add (local.get $W) (i32.load (i32.add (local.get $idx) (i32.shl (local.get $k) (i32.const 2))))))
                (local.set $s
                  (v128.load32_splat (i32.add (local.get $val) (i32.shl (local.get $k) (i32.const 2)))))
                (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s) (v128.load offset=0 (local.get $w)))))
                (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s) (v128.load offset=16 (local.get $w)))))
                (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s) (v128.load offset=32 (local.get $w)))))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $nz)))
            (v128.store offset=0 (local.get $rowOut) (local.get $a0))
            (v128.store offset=16 (local.get $rowOut) (local.get $a1))
            (v128.store offset=32 (local.get $rowOut) (local.get $a2)))
          (else
            (local.set $v (i32.const 0))
            (block $colsDone
              (loop $cols
                (br_if $colsDone (i32.ge_u (local.get $v) (local.get $stride)))
                (local.set $a0 (v128.load (i32.add (local.get $base) (local.get $v))))
                (local.set $k (i32.load (i32.add (local.get $offs) (i32.shl (local.get $b) (i32.const 2)))))
                (block $done
                  (loop $nz
                    (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
                    (local.set $w
                      (i32.add
                        (i32.add (local.get $W) (local.get $v))
                        (i32.load (i32.add (local.get $idx) (i32.shl (local.get $k) (i32.const 2))))))
                    (local.set $a0
                      (f32x4.add
                        (local.get $a0)
                        (f32x4.mul
                          (v128.load32_splat (i32.add (local.get $val) (i32.shl (local.get $k) (i32.const 2))))
                          (v128.load (local.get $w)))))
                    (local.set $k (i32.add (local.get $k) (i32.const 1)))
                    (br $nz)))
                (v128.store (i32.add (local.get $rowOut) (local.get $v)) (local.get $a0))
                (local.set $v (i32.add (local.get $v) (i32.const 16)))
                (br $cols)))))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $rows))))

  ;; T[idx[k], :] += (alpha · delta[b, :]) · val[k] over row b's non-zeros, for b < B, in row order.
  ;; With T = W and alpha = −η this is the SGD step itself; with T a zeroed gradient buffer it
  ;; accumulates alpha · Σ_b φ(x_b) δ_bᵀ.
  (func (export "scatter")
    (param $B i32) (param $T i32) (param $Cp i32) (param $delta i32) (param $idx i32) (param $val i32)
    (param $offs i32) (param $alpha f32)
    (local $b i32) (local $k i32) (local $end i32) (local $w i32) (local $s v128) (local $v i32)
    (local $d0 v128) (local $d1 v128) (local $d2 v128) (local $rowD i32) (local $stride i32)
    (local $a v128)
    (local.set $stride (i32.shl (local.get $Cp) (i32.const 2)))
    (local.set $a (f32x4.splat (local.get $alpha)))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $b) (local.get $B)))
        (local.set $rowD (i32.add (local.get $delta) (i32.mul (local.get $b) (local.get $stride))))
        (local.set $end
          (i32.load (i32.add (local.get $offs) (i32.shl (i32.add (local.get $b) (i32.const 1)) (i32.const 2)))))
        (if (i32.eq (local.get $Cp) (i32.const 12))
          (then
            (local.set $k (i32.load (i32.add (local.get $offs) (i32.shl (local.get $b) (i32.const 2)))))
            (local.set $d0 (f32x4.mul (local.get $a) (v128.load offset=0 (local.get $rowD))))
            (local.set $d1 (f32x4.mul (local.get $a) (v128.load offset=16 (local.get $rowD))))
            (local.set $d2 (f32x4.mul (local.get $a) (v128.load offset=32 (local.get $rowD))))
            (block $done
              (loop $nz
                (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
                (local.set $w
                  (i32.add (local.get $T) (i32.load (i32.add (local.get $idx) (i32.shl (local.get $k) (i32.const 2))))))
                (local.set $s
                  (v128.load32_splat (i32.add (local.get $val) (i32.shl (local.get $k) (i32.const 2)))))
                (v128.store offset=0 (local.get $w)
                  (f32x4.add (v128.load offset=0 (local.get $w)) (f32x4.mul (local.get $s) (local.get $d0))))
                (v128.store offset=16 (local.get $w)
                  (f32x4.add (v128.load offset=16 (local.get $w)) (f32x4.mul (local.get $s) (local.get $d1))))
                (v128.store offset=32 (local.get $w)
                  (f32x4.add (v128.load offset=32 (local.get $w)) (f32x4.mul (local.get $s) (local.get $d2))))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $nz))))
          (else
            (local.set $v (i32.const 0))
            (block $colsDone
              (loop $cols
                (br_if $colsDone (i32.ge_u (local.get $v) (local.get $stride)))
                (local.set $d0 (f32x4.mul (local.get $a) (v128.load (i32.add (local.get $rowD) (local.get $v)))))
                (local.set $k (i32.load (i32.add (local.get $offs) (i32.shl (local.get $b) (i32.const 2)))))
                (block $done
                  (loop $nz
                    (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
                    (local.set $w
                      (i32.add
                        (i32.add (local.get $T) (local.get $v))
                        (i32.load (i32.add (local.get $idx) (i32.shl (local.get $k) (i32.const 2))))))
                    (v128.store (local.get $w)
                      (f32x4.add
                        (v128.load (local.get $w))
                        (f32x4.mul
                          (v128.load32_splat (i32.add (local.get $val) (i32.shl (local.get $k) (i32.const 2))))
                          (local.get $d0))))
                    (local.set $k (i32.add (local.get $k) (i32.const 1)))
                    (br $nz)))
                (local.set $v (i32.add (local.get $v) (i32.const 16)))
                (br $cols)))))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $rows))))

  ;; out[:] = Σ_{j0 ≤ j < j1} coef[j] · W[j, :] — the dense part of every row's logits (shift, bias).
  (func (export "rowsDot")
    (param $W i32) (param $Cp i32) (param $coef i32) (param $j0 i32) (param $j1 i32) (param $out i32)
    (local $v i32) (local $j i32) (local $stride i32) (local $a v128)
    (local.set $stride (i32.shl (local.get $Cp) (i32.const 2)))
    (block $colsDone
      (loop $cols
        (br_if $colsDone (i32.ge_u (local.get $v) (local.get $stride)))
        (local.set $a (v128.const i32x4 0 0 0 0))
        (local.set $j (local.get $j0))
        (block $done
          (loop $rows
            (br_if $done (i32.ge_u (local.get $j) (local.get $j1)))
            (local.set $a
              (f32x4.add
                (local.get $a)
                (f32x4.mul
                  (v128.load32_splat (i32.add (local.get $coef) (i32.shl (local.get $j) (i32.const 2))))
                  (v128.load
                    (i32.add (local.get $W) (i32.add (i32.mul (local.get $j) (local.get $stride)) (local.get $v)))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $rows)))
        (v128.store (i32.add (local.get $out) (local.get $v)) (local.get $a))
        (local.set $v (i32.add (local.get $v) (i32.const 16)))
        (br $cols))))

  ;; T[j, :] += (alpha · coef[j]) · vec for j0 ≤ j < j1 — the dense part of the gradient, with vec
  ;; the batch's summed δ.
  (func (export "rowsAxpy")
    (param $T i32) (param $Cp i32) (param $coef i32) (param $j0 i32) (param $j1 i32) (param $alpha f32)
    (param $vec i32)
    (local $v i32) (local $j i32) (local $stride i32) (local $s v128) (local $p i32)
    (local.set $stride (i32.shl (local.get $Cp) (i32.const 2)))
    (local.set $j (local.get $j0))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $j) (local.get $j1)))
        (local.set $s
          (f32x4.splat
            (f32.mul (local.get $alpha) (f32.load (i32.add (local.get $coef) (i32.shl (local.get $j) (i32.const 2)))))))
        (local.set $v (i32.const 0))
        (block $colsDone
          (loop $cols
            (br_if $colsDone (i32.ge_u (local.get $v) (local.get $stride)))
            (local.set $p (i32.add (local.get $T) (i32.add (i32.mul (local.get $j) (local.get $stride)) (local.get $v))))
            (v128.store (local.get $p)
              (f32x4.add
                (v128.load (local.get $p))
                (f32x4.mul (local.get $s) (v128.load (i32.add (local.get $vec) (local.get $v))))))
            (local.set $v (i32.add (local.get $v) (i32.const 16)))
            (br $cols)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $rows))))

  ;; Σ p[i]² over n f32 (n a multiple of 4), accumulated in f64: the squared gradient norm.
  (func (export "sumSquares") (param $p i32) (param $n i32) (result f64)
    (local $end i32) (local $a v128) (local $lo v128) (local $hi v128) (local $x v128)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $a (v128.const i32x4 0 0 0 0))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $x (v128.load (local.get $p)))
        (local.set $lo (f64x2.promote_low_f32x4 (local.get $x)))
        (local.set $hi (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x))))
        (local.set $a
          (f64x2.add
            (local.get $a)
            (f64x2.add (f64x2.mul (local.get $lo) (local.get $lo)) (f64x2.mul (local.get $hi) (local.get $hi)))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $each)))
    (f64.add (f64x2.extract_lane 0 (local.get $a)) (f64x2.extract_lane 1 (local.get $a))))

  ;; The optimiser's update of n weights (n a multiple of 4), PyTorch's SGD rule:
  ;;   g = gscale·G + decay·W;  with momentum μ > 0: V = μ·V + g, step = nesterov ? g + μ·V : V;
  ;;   otherwise step = g;  W −= lr·step.
  (func (export "applyUpdate")
    (param $W i32) (param $G i32) (param $V i32) (param $n i32) (param $lr f32) (param $gscale f32)
    (param $decay f32) (param $mu f32) (param $nesterov i32)
    (local $i i32) (local $end i32) (local $g v128) (local $vel v128) (local $step v128)
    (local $lrv v128) (local $gs v128) (local $dv v128) (local $muv v128)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $lrv (f32x4.splat (local.get $lr)))
    (local.set $gs (f32x4.splat (local.get $gscale)))
    (local.set $dv (f32x4.splat (local.get $decay)))
    (local.set $muv (f32x4.splat (local.get $mu)))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $g
          (f32x4.add
            (f32x4.mul (local.get $gs) (v128.load (i32.add (local.get $G) (local.get $i))))
            (f32x4.mul (local.get $dv) (v128.load (i32.add (local.get $W) (local.get $i))))))
        (if (f32.gt (local.get $mu) (f32.const 0))
          (then
            (local.set $vel
              (f32x4.add
                (f32x4.mul (local.get $muv) (v128.load (i32.add (local.get $V) (local.get $i))))
                (local.get $g)))
            (v128.store (i32.add (local.get $V) (local.get $i)) (local.get $vel))
            (local.set $step
              (select (result v128)
                (f32x4.add (local.get $g) (f32x4.mul (local.get $muv) (local.get $vel)))
                (local.get $vel)
                (local.get $nesterov))))
          (else (local.set $step (local.get $g))))
        (v128.store (i32.add (local.get $W) (local.get $i))
          (f32x4.sub
            (v128.load (i32.add (local.get $W) (local.get $i)))
            (f32x4.mul (local.get $lrv) (local.get $step))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $each))))

  ;; e^x for f32x4 lanes x ≤ 0 (Cephes' expf: x = n·ln2 + r, |r| ≤ ln2/2, a degree-7 polynomial in
  ;; r, times 2^n built in the exponent bits); below −87.3 it returns e^−87.3 ≈ 1e−38, not 0.
  (func $exp (param $x v128) (result v128)
    (local $n v128) (local $r v128) (local $p v128)
    (local.set $x (f32x4.max (local.get $x) (v128.const f32x4 -87.3 -87.3 -87.3 -87.3)))
    (local.set $n
      (f32x4.floor
        (f32x4.add
          (f32x4.mul (local.get $x) (v128.const f32x4 1.44269504088896341 1.44269504088896341 1.44269504088896341 1.44269504088896341))
          (v128.const f32x4 0.5 0.5 0.5 0.5))))
    (local.set $r
      (f32x4.sub
        (f32x4.sub
          (local.get $x)
          (f32x4.mul (local.get $n) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375)))
        (f32x4.mul (local.get $n) (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
    (local.set $p (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1)))
    (local.set $p
      (f32x4.add
        (f32x4.add (f32x4.mul (local.get $p) (f32x4.mul (local.get $r) (local.get $r))) (local.get $r))
        (v128.const f32x4 1 1 1 1)))
    (f32x4.mul
      (local.get $p)
      (i32x4.shl
        (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $n)) (v128.const i32x4 127 127 127 127))
        (i32.const 23))))

  ;; Softmax over the first C of each row's Cp logits z[b] (b < B), numerically stable: with
  ;; max = max_c z[b,c] and sum = Σ_c e^(z[b,c] − max), row b of stats gets (f32 sum, f32
  ;; z[b,label] − max, i32 first argmax), so the caller's cross-entropy is log(sum) − (z_label − max).
  ;; With $grad, row b of z becomes δ = softmax − onehot(label) (pad lanes 0) and dsum += δ.
  (func (export "softmax")
    (param $z i32) (param $B i32) (param $Cp i32) (param $C i32) (param $labels i32) (param $grad i32)
    (param $dsum i32) (param $stats i32)
    (local $b i32) (local $row i32) (local $v i32) (local $stride i32) (local $label i32)
    (local $mx v128) (local $t v128) (local $lanes v128) (local $valid v128) (local $max f32)
    (local $sum v128) (local $total f32) (local $arg i32) (local $m i32) (local $inv v128)
    (local $d v128)
    (local.set $stride (i32.shl (local.get $Cp) (i32.const 2)))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $b) (local.get $B)))
        (local.set $row (i32.add (local.get $z) (i32.mul (local.get $b) (local.get $stride))))
        (local.set $label (i32.load (i32.add (local.get $labels) (i32.shl (local.get $b) (i32.const 2)))))
        ;; the maximum over valid lanes (lane index < C)
        (local.set $mx (v128.const f32x4 -inf -inf -inf -inf))
        (local.set $lanes (v128.const i32x4 0 1 2 3))
        (local.set $v (i32.const 0))
        (block $done
          (loop $cols
            (br_if $done (i32.ge_u (local.get $v) (local.get $stride)))
            (local.set $valid (i32x4.lt_s (local.get $lanes) (i32x4.splat (local.get $C))))
            (local.set $mx
              (f32x4.max
                (local.get $mx)
                (v128.bitselect
                  (v128.load (i32.add (local.get $row) (local.get $v)))
                  (v128.const f32x4 -inf -inf -inf -inf)
                  (local.get $valid))))
            (local.set $lanes (i32x4.add (local.get $lanes) (v128.const i32x4 4 4 4 4)))
            (local.set $v (i32.add (local.get $v) (i32.const 16)))
            (br $cols)))
        (local.set $mx (f32x4.max (local.get $mx) (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $mx) (local.get $mx))))
        (local.set $mx (f32x4.max (local.get $mx) (i8x16.shuffle 4 5 6 7 0 1 2 3 12 13 14 15 8 9 10 11 (local.get $mx) (local.get $mx))))
        (local.set $max (f32x4.extract_lane 0 (local.get $mx)))
        (f32.store offset=4 (i32.add (local.get $stats) (i32.shl (local.get $b) (i32.const 4)))
          (f32.sub
            (f32.load (i32.add (local.get $row) (i32.shl (local.get $label) (i32.const 2))))
            (local.get $max)))
        ;; e = exp(z − max) in place (pad lanes 0), the sum, and the first lane holding the maximum
        (local.set $sum (v128.const i32x4 0 0 0 0))
        (local.set $arg (i32.const -1))
        (local.set $lanes (v128.const i32x4 0 1 2 3))
        (local.set $v (i32.const 0))
        (block $done
          (loop $cols
            (br_if $done (i32.ge_u (local.get $v) (local.get $stride)))
            (local.set $valid (i32x4.lt_s (local.get $lanes) (i32x4.splat (local.get $C))))
            (local.set $t (v128.load (i32.add (local.get $row) (local.get $v))))
            (if (i32.lt_s (local.get $arg) (i32.const 0))
              (then
                (local.set $m
                  (i8x16.bitmask
                    (v128.and (f32x4.eq (local.get $t) (local.get $mx)) (local.get $valid))))
                (if (local.get $m)
                  (then
                    (local.set $arg
                      (i32.add
                        (i32.shr_u (local.get $v) (i32.const 2))
                        (i32.shr_u (i32.ctz (local.get $m)) (i32.const 2))))))))
            (local.set $t (v128.and (call $exp (f32x4.sub (local.get $t) (local.get $mx))) (local.get $valid)))
            (v128.store (i32.add (local.get $row) (local.get $v)) (local.get $t))
            (local.set $sum (f32x4.add (local.get $sum) (local.get $t)))
            (local.set $lanes (i32x4.add (local.get $lanes) (v128.const i32x4 4 4 4 4)))
            (local.set $v (i32.add (local.get $v) (i32.const 16)))
            (br $cols)))
        (local.set $sum (f32x4.add (local.get $sum) (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $sum) (local.get $sum))))
        (local.set $sum (f32x4.add (local.get $sum) (i8x16.shuffle 4 5 6 7 0 1 2 3 12 13 14 15 8 9 10 11 (local.get $sum) (local.get $sum))))
        (local.set $total (f32x4.extract_lane 0 (local.get $sum)))
        (f32.store offset=0 (i32.add (local.get $stats) (i32.shl (local.get $b) (i32.const 4))) (local.get $total))
        (i32.store offset=8 (i32.add (local.get $stats) (i32.shl (local.get $b) (i32.const 4))) (local.get $arg))
                (if (local.get $grad)
          (then
            (local.set $inv (f32x4.splat (f32.div (f32.const 1) (local.get $total))))
            (local.set $lanes (v128.const i32x4 0 1 2 3))
            (local.set $v (i32.const 0))
            (block $done
              (loop $cols
                (br_if $done (i32.ge_u (local.get $v) (local.get $stride)))
                (local.set $d
                  (f32x4.sub
                    (f32x4.mul (v128.load (i32.add (local.get $row) (local.get $v))) (local.get $inv))
                    (v128.and
                      (i32x4.eq (local.get $lanes) (i32x4.splat (local.get $label)))
                      (v128.const f32x4 1 1 1 1))))
                (v128.store (i32.add (local.get $row) (local.get $v)) (local.get $d))
                (v128.store (i32.add (local.get $dsum) (local.get $v))
                  (f32x4.add (v128.load (i32.add (local.get $dsum) (local.get $v))) (local.get $d)))
                (local.set $lanes (i32x4.add (local.get $lanes) (v128.const i32x4 4 4 4 4)))
                (local.set $v (i32.add (local.get $v) (i32.const 16)))
                (br $cols)))))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $rows))))
)
