;; Hidden-layer inner loops of the multi-layer perceptron in WebAssembly SIMD (f32x4).
;;
;; `npm run build:wasm` assembles this file into mlpWasm.ts; ../mlp.ts lays out the memory and
;; drives it. The module owns no memory: it imports the softmax-regression module's (`kernel`
;; `memory`), so one instance of each works on the same bytes and mlp.ts uses that module's
;; sparsifiers (rows of bytes, and hidden activations, to lists of non-zeros), its output-layer
;; logits and scatter (10 classes: three f32x4 in registers), its softmax and its optimiser update.
;; Every pointer is a byte offset. Shapes:
;;   W, T    rows × Hp f32, row-major; Hp = the layer's units padded to a multiple of 4 (pad 0)
;;   idx     per non-zero input: the byte offset of its weight row, j·Hp·4
;;   val     per non-zero input: its value (a scaled pixel, or a hidden unit's activation)
;;   offs    B+1 i32: row b's non-zeros are idx/val[offs[b] … offs[b+1])
;;   out, delta, h   B × Hp f32
;; A hidden layer of MNIST is ~80% zero inputs (pixels) or ~50% (ReLU activations), so the
;; multiply-adds follow the non-zeros. Eight f32x4 accumulators — 32 units — stay in registers
;; while a row's non-zeros stream past; f32 arithmetic without fused multiply-adds gives the same
;; bits on every machine, which is what makes a resumed run bit-identical.
(module
  (import "kernel" "memory" (memory 1))

  ;; out[b, :] = base + Σ_k val[k] · W[idx[k], :] over row b's non-zeros, for b < B. Blocks of 28
  ;; units: seven f32x4 accumulators, the seven loads of W and the splat of val fill the 15 vector
  ;; registers V8 hands out, where eight accumulators would spill (measured ~1.7× slower). A layer
  ;; not a multiple of 28 wide ends with a block moved back to end at its last unit: it recomputes
  ;; a few units of the block before, bit for bit the same, since each unit's sum runs over the
  ;; same non-zeros in the same order. Layers narrower than 28 go one f32x4 at a time.
  (func (export "sparseForward")
    (param $B i32) (param $W i32) (param $Hp i32) (param $base i32) (param $idx i32) (param $val i32)
    (param $offs i32) (param $out i32)
    (local $b i32) (local $stride i32) (local $row i32) (local $v i32)
    (local $pi i32) (local $pv i32) (local $pe i32) (local $k0 i32) (local $w i32) (local $s v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $a4 v128)
    (local $a5 v128) (local $a6 v128)
    (local.set $stride (i32.shl (local.get $Hp) (i32.const 2)))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $b) (local.get $B)))
        (local.set $row (i32.add (local.get $out) (i32.mul (local.get $b) (local.get $stride))))
        (local.set $k0 (i32.shl (i32.load (i32.add (local.get $offs) (i32.shl (local.get $b) (i32.const 2)))) (i32.const 2)))
        (local.set $pe
          (i32.add
            (local.get $idx)
            (i32.shl
              (i32.load (i32.add (local.get $offs) (i32.shl (i32.add (local.get $b) (i32.const 1)) (i32.const 2))))
              (i32.const 2))))
        (if (i32.ge_u (local.get $stride) (i32.const 112))
          (then
            (local.set $v (i32.const 0))
            (block $blocksDone
              (loop $blocks
                ;; the last block ends at the row's end
                (if (i32.gt_u (i32.add (local.get $v) (i32.const 112)) (local.get $stride))
                  (then (local.set $v (i32.sub (local.get $stride) (i32.const 112)))))
                (local.set $w (i32.add (local.get $base) (local.get $v)))
                (local.set $a0 (v128.load offset=0 (local.get $w)))
                (local.set $a1 (v128.load offset=16 (local.get $w)))
                (local.set $a2 (v128.load offset=32 (local.get $w)))
                (local.set $a3 (v128.load offset=48 (local.get $w)))
                (local.set $a4 (v128.load offset=64 (local.get $w)))
                (local.set $a5 (v128.load offset=80 (local.get $w)))
                (local.set $a6 (v128.load offset=96 (local.get $w)))
                (local.set $pi (i32.add (local.get $idx) (local.get $k0)))
                (local.set $pv (i32.add (local.get $val) (local.get $k0)))
                (block $done
                  (loop $nz
                    (br_if $done (i32.ge_u (local.get $pi) (local.get $pe)))
                    (local.set $w (i32.add (i32.add (local.get $W) (local.get $v)) (i32.load (local.get $pi))))
                    (local.set $s (v128.load32_splat (local.get $pv)))
                    (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $s) (v128.load offset=0 (local.get $w)))))
                    (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $s) (v128.load offset=16 (local.get $w)))))
                    (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $s) (v128.load offset=32 (local.get $w)))))
                    (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $s) (v128.load offset=48 (local.get $w)))))
                    (local.set $a4 (f32x4.add (local.get $a4) (f32x4.mul (local.get $s) (v128.load offset=64 (local.get $w)))))
                    (local.set $a5 (f32x4.add (local.get $a5) (f32x4.mul (local.get $s) (v128.load offset=80 (local.get $w)))))
                    (local.set $a6 (f32x4.add (local.get $a6) (f32x4.mul (local.get $s) (v128.load offset=96 (local.get $w)))))
                    (local.set $pi (i32.add (local.get $pi) (i32.const 4)))
                    (local.set $pv (i32.add (local.get $pv) (i32.const 4)))
                    (br $nz)))
                (local.set $w (i32.add (local.get $row) (local.get $v)))
                (v128.store offset=0 (local.get $w) (local.get $a0))
                (v128.store offset=16 (local.get $w) (local.get $a1))
                (v128.store offset=32 (local.get $w) (local.get $a2))
                (v128.store offset=48 (local.get $w) (local.get $a3))
                (v128.store offset=64 (local.get $w) (local.get $a4))
                (v128.store offset=80 (local.get $w) (local.get $a5))
                (v128.store offset=96 (local.get $w) (local.get $a6))
                (local.set $v (i32.add (local.get $v) (i32.const 112)))
                (br_if $blocks (i32.lt_u (local.get $v) (local.get $stride))))))
          (else
            (local.set $v (i32.const 0))
            (block $colsDone
              (loop $cols
                (br_if $colsDone (i32.ge_u (local.get $v) (local.get $stride)))
                (local.set $a0 (v128.load (i32.add (local.get $base) (local.get $v))))
                (local.set $pi (i32.add (local.get $idx) (local.get $k0)))
                (local.set $pv (i32.add (local.get $val) (local.get $k0)))
                (block $done
                  (loop $nz
                    (br_if $done (i32.ge_u (local.get $pi) (local.get $pe)))
                    (local.set $a0
                      (f32x4.add
                        (local.get $a0)
                        (f32x4.mul
                          (v128.load32_splat (local.get $pv))
                          (v128.load (i32.add (i32.add (local.get $W) (local.get $v)) (i32.load (local.get $pi)))))))
                    (local.set $pi (i32.add (local.get $pi) (i32.const 4)))
                    (local.set $pv (i32.add (local.get $pv) (i32.const 4)))
                    (br $nz)))
                (v128.store (i32.add (local.get $row) (local.get $v)) (local.get $a0))
                (local.set $v (i32.add (local.get $v) (i32.const 16)))
                (br $cols)))))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $rows))))

  ;; T[idx[k], :] += val[k] · (alpha · delta[b, :]) over row b's non-zeros, for b < B in row order.
  ;; With T = W and alpha = −η/B this is a plain SGD step of the layer; with T a zeroed gradient
  ;; buffer it accumulates alpha · Σ_b input_b δ_bᵀ. Blocks of 32 units as in sparseForward: the
  ;; eight f32x4 of alpha·δ stay in registers while the rows of T are read and written.
  (func (export "sparseScatter")
    (param $B i32) (param $T i32) (param $Hp i32) (param $delta i32) (param $idx i32) (param $val i32)
    (param $offs i32) (param $alpha f32)
    (local $b i32) (local $stride i32) (local $wide i32) (local $rowD i32) (local $v i32)
    (local $pi i32) (local $pv i32) (local $pe i32) (local $k0 i32) (local $end i32) (local $w i32)
    (local $al v128) (local $s v128) (local $d0 v128) (local $d1 v128) (local $d2 v128) (local $d3 v128)
    (local $d4 v128) (local $d5 v128) (local $d6 v128) (local $d7 v128)
    (local.set $stride (i32.shl (local.get $Hp) (i32.const 2)))
    (local.set $wide (i32.and (local.get $stride) (i32.const -128)))
    (local.set $al (f32x4.splat (local.get $alpha)))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $b) (local.get $B)))
        (local.set $rowD (i32.add (local.get $delta) (i32.mul (local.get $b) (local.get $stride))))
        (local.set $k0 (i32.shl (i32.load (i32.add (local.get $offs) (i32.shl (local.get $b) (i32.const 2)))) (i32.const 2)))
        (local.set $end
          (i32.shl
            (i32.load (i32.add (local.get $offs) (i32.shl (i32.add (local.get $b) (i32.const 1)) (i32.const 2))))
            (i32.const 2)))
        (local.set $pe (i32.add (local.get $idx) (local.get $end)))
        (local.set $v (i32.const 0))
        (block $blocksDone
          (loop $blocks
            (br_if $blocksDone (i32.ge_u (local.get $v) (local.get $wide)))
            (local.set $w (i32.add (local.get $rowD) (local.get $v)))
            (local.set $d0 (f32x4.mul (local.get $al) (v128.load offset=0 (local.get $w))))
            (local.set $d1 (f32x4.mul (local.get $al) (v128.load offset=16 (local.get $w))))
            (local.set $d2 (f32x4.mul (local.get $al) (v128.load offset=32 (local.get $w))))
            (local.set $d3 (f32x4.mul (local.get $al) (v128.load offset=48 (local.get $w))))
            (local.set $d4 (f32x4.mul (local.get $al) (v128.load offset=64 (local.get $w))))
            (local.set $d5 (f32x4.mul (local.get $al) (v128.load offset=80 (local.get $w))))
            (local.set $d6 (f32x4.mul (local.get $al) (v128.load offset=96 (local.get $w))))
            (local.set $d7 (f32x4.mul (local.get $al) (v128.load offset=112 (local.get $w))))
            (local.set $pi (i32.add (local.get $idx) (local.get $k0)))
            (local.set $pv (i32.add (local.get $val) (local.get $k0)))
            (block $done
              (loop $nz
                (br_if $done (i32.ge_u (local.get $pi) (local.get $pe)))
                (local.set $w (i32.add (i32.add (local.get $T) (local.get $v)) (i32.load (local.get $pi))))
                (local.set $s (v128.load32_splat (local.get $pv)))
                (v128.store offset=0 (local.get $w)
                  (f32x4.add (v128.load offset=0 (local.get $w)) (f32x4.mul (local.get $s) (local.get $d0))))
                (v128.store offset=16 (local.get $w)
                  (f32x4.add (v128.load offset=16 (local.get $w)) (f32x4.mul (local.get $s) (local.get $d1))))
                (v128.store offset=32 (local.get $w)
                  (f32x4.add (v128.load offset=32 (local.get $w)) (f32x4.mul (local.get $s) (local.get $d2))))
                (v128.store offset=48 (local.get $w)
                  (f32x4.add (v128.load offset=48 (local.get $w)) (f32x4.mul (local.get $s) (local.get $d3))))
                (v128.store offset=64 (local.get $w)
                  (f32x4.add (v128.load offset=64 (local.get $w)) (f32x4.mul (local.get $s) (local.get $d4))))
                (v128.store offset=80 (local.get $w)
                  (f32x4.add (v128.load offset=80 (local.get $w)) (f32x4.mul (local.get $s) (local.get $d5))))
                (v128.store offset=96 (local.get $w)
                  (f32x4.add (v128.load offset=96 (local.get $w)) (f32x4.mul (local.get $s) (local.get $d6))))
                (v128.store offset=112 (local.get $w)
                  (f32x4.add (v128.load offset=112 (local.get $w)) (f32x4.mul (local.get $s) (local.get $d7))))
                (local.set $pi (i32.add (local.get $pi) (i32.const 4)))
                (local.set $pv (i32.add (local.get $pv) (i32.const 4)))
                (br $nz)))
            (local.set $v (i32.add (local.get $v) (i32.const 128)))
            (br $blocks)))
        (block $tailDone
          (loop $tail
            (br_if $tailDone (i32.ge_u (local.get $v) (local.get $stride)))
            (local.set $d0 (f32x4.mul (local.get $al) (v128.load (i32.add (local.get $rowD) (local.get $v)))))
            (local.set $pi (i32.add (local.get $idx) (local.get $k0)))
            (local.set $pv (i32.add (local.get $val) (local.get $k0)))
            (block $done
              (loop $nz
                (br_if $done (i32.ge_u (local.get $pi) (local.get $pe)))
                (local.set $w (i32.add (i32.add (local.get $T) (local.get $v)) (i32.load (local.get $pi))))
                (v128.store (local.get $w)
                  (f32x4.add
                    (v128.load (local.get $w))
                    (f32x4.mul (v128.load32_splat (local.get $pv)) (local.get $d0))))
                (local.set $pi (i32.add (local.get $pi) (i32.const 4)))
                (local.set $pv (i32.add (local.get $pv) (i32.const 4)))
                (br $nz)))
            (local.set $v (i32.add (local.get $v) (i32.const 16)))
            (br $tail)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $rows))))

  ;; e^x for f32x4 lanes −87.3 ≤ x ≤ 0: Cephes' expf, the same polynomial as softmaxRegression.wat's
  ;; (x = n·ln2 + r, |r| ≤ ln2/2, degree 7 in r, times 2^n built in the exponent bits).
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

  ;; tanh of f32x4 lanes, Cephes' tanhf: for |x| < 0.625 the odd polynomial x + x³·P(x²), else
  ;; (1 − t)/(1 + t) with t = e^(−2|x|) and the sign of x put back (no cancellation: t ≤ 0.29).
  ;; |x| is capped at 9, where tanh is 1 in f32, so e^(−2|x|) stays in range.
  (func $tanh (param $x v128) (result v128)
    (local $a v128) (local $z v128) (local $small v128) (local $t v128)
    (local.set $a (f32x4.min (f32x4.abs (local.get $x)) (v128.const f32x4 9 9 9 9)))
    (local.set $z (f32x4.mul (local.get $x) (local.get $x)))
    (local.set $small
      (f32x4.add
        (f32x4.mul
          (f32x4.mul
            (f32x4.add
              (f32x4.mul
                (f32x4.add
                  (f32x4.mul
                    (f32x4.add
                      (f32x4.mul
                        (f32x4.add
                          (f32x4.mul (v128.const f32x4 -5.70498872745e-3 -5.70498872745e-3 -5.70498872745e-3 -5.70498872745e-3) (local.get $z))
                          (v128.const f32x4 2.06390887954e-2 2.06390887954e-2 2.06390887954e-2 2.06390887954e-2))
                        (local.get $z))
                      (v128.const f32x4 -5.37397155531e-2 -5.37397155531e-2 -5.37397155531e-2 -5.37397155531e-2))
                    (local.get $z))
                  (v128.const f32x4 1.33314422036e-1 1.33314422036e-1 1.33314422036e-1 1.33314422036e-1))
                (local.get $z))
              (v128.const f32x4 -3.33332819422e-1 -3.33332819422e-1 -3.33332819422e-1 -3.33332819422e-1))
            (local.get $z))
          (local.get $x))
        (local.get $x)))
    (local.set $t (call $exp (f32x4.mul (local.get $a) (v128.const f32x4 -2 -2 -2 -2))))
    (local.set $t
      (f32x4.div
        (f32x4.sub (v128.const f32x4 1 1 1 1) (local.get $t))
        (f32x4.add (v128.const f32x4 1 1 1 1) (local.get $t))))
    ;; the sign bit of x on |tanh x|
    (local.set $t
      (v128.or
        (local.get $t)
        (v128.and (local.get $x) (v128.const i32x4 0x80000000 0x80000000 0x80000000 0x80000000))))
    (v128.bitselect
      (local.get $small)
      (local.get $t)
      (f32x4.lt (local.get $a) (v128.const f32x4 0.625 0.625 0.625 0.625))))

  ;; The activation of n floats in place (n a multiple of 4): kind 0 ReLU max(x, 0), kind 1 tanh.
  (func (export "activate") (param $p i32) (param $n i32) (param $kind i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (if (i32.eqz (local.get $kind))
      (then
        (block $done
          (loop $each
            (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
            (v128.store (local.get $p) (f32x4.max (v128.load (local.get $p)) (v128.const f32x4 0 0 0 0)))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (br $each))))
      (else
        (block $done
          (loop $each
            (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
            (v128.store (local.get $p) (call $tanh (v128.load (local.get $p))))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (br $each))))))

  ;; Back through a layer to its input: out[b, k] = (Σ_c delta[b, c] · W[k, c]) · act′(h[b, k]) for
  ;; k < Hin (a multiple of 4), b < B; W and delta are Cp floats wide, h and out Hin. The activation
  ;; derivative is read off its output h: ReLU (kind 0) 1 where h > 0, tanh (kind 1) 1 − h². Four
  ;; units at a time: four f32x4 partial dot products, then a 4×4 transpose-and-add gives the four
  ;; sums in one vector, each summed in the same order, (lanes 0 + 2) + (lanes 1 + 3).
  (func (export "backHidden")
    (param $B i32) (param $W i32) (param $Cp i32) (param $Hin i32) (param $delta i32) (param $h i32)
    (param $kind i32) (param $out i32)
    (local $b i32) (local $k i32) (local $v i32) (local $stride i32) (local $rowD i32) (local $rowH i32)
    (local $w i32) (local $d v128) (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128)
    (local $u v128) (local $x v128) (local $hv v128) (local $r v128)
    (local.set $stride (i32.shl (local.get $Cp) (i32.const 2)))
    (block $rowsDone
      (loop $rows
        (br_if $rowsDone (i32.ge_u (local.get $b) (local.get $B)))
        (local.set $rowD (i32.add (local.get $delta) (i32.mul (local.get $b) (local.get $stride))))
        (local.set $rowH (i32.shl (i32.mul (local.get $b) (local.get $Hin)) (i32.const 2)))
        (local.set $k (i32.const 0))
        (block $unitsDone
          (loop $units
            (br_if $unitsDone (i32.ge_u (local.get $k) (local.get $Hin)))
            (local.set $c0 (v128.const i32x4 0 0 0 0))
            (local.set $c1 (v128.const i32x4 0 0 0 0))
            (local.set $c2 (v128.const i32x4 0 0 0 0))
            (local.set $c3 (v128.const i32x4 0 0 0 0))
            (local.set $w (i32.add (local.get $W) (i32.mul (local.get $k) (local.get $stride))))
            (local.set $v (i32.const 0))
            (block $colsDone
              (loop $cols
                (br_if $colsDone (i32.ge_u (local.get $v) (local.get $stride)))
                (local.set $d (v128.load (i32.add (local.get $rowD) (local.get $v))))
                (local.set $c0 (f32x4.add (local.get $c0) (f32x4.mul (local.get $d) (v128.load (local.get $w)))))
                (local.set $c1
                  (f32x4.add (local.get $c1)
                    (f32x4.mul (local.get $d) (v128.load (i32.add (local.get $w) (local.get $stride))))))
                (local.set $c2
                  (f32x4.add (local.get $c2)
                    (f32x4.mul (local.get $d)
                      (v128.load (i32.add (local.get $w) (i32.shl (local.get $stride) (i32.const 1)))))))
                (local.set $c3
                  (f32x4.add (local.get $c3)
                    (f32x4.mul (local.get $d)
                      (v128.load (i32.add (local.get $w) (i32.mul (local.get $stride) (i32.const 3)))))))
                (local.set $w (i32.add (local.get $w) (i32.const 16)))
                (local.set $v (i32.add (local.get $v) (i32.const 16)))
                (br $cols)))
            ;; u = (c0.0 + c0.2, c1.0 + c1.2, c0.1 + c0.3, c1.1 + c1.3), x the same for c2, c3
            (local.set $u
              (f32x4.add
                (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $c0) (local.get $c1))
                (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $c0) (local.get $c1))))
            (local.set $x
              (f32x4.add
                (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $c2) (local.get $c3))
                (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $c2) (local.get $c3))))
            (local.set $r
              (f32x4.add
                (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $u) (local.get $x))
                (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $u) (local.get $x))))
            (local.set $w (i32.add (local.get $rowH) (i32.shl (local.get $k) (i32.const 2))))
            (local.set $hv (v128.load (i32.add (local.get $h) (local.get $w))))
            (v128.store (i32.add (local.get $out) (local.get $w))
              (if (result v128) (i32.eqz (local.get $kind))
                (then (v128.and (local.get $r) (f32x4.gt (local.get $hv) (v128.const f32x4 0 0 0 0))))
                (else
                  (f32x4.mul
                    (local.get $r)
                    (f32x4.sub (v128.const f32x4 1 1 1 1) (f32x4.mul (local.get $hv) (local.get $hv)))))))
            (local.set $k (i32.add (local.get $k) (i32.const 4)))
            (br $units)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (br $rows))))

  ;; out[:] = Σ_{b < B} delta[b, :], Hp floats wide (a multiple of 4), summed in row order: the
  ;; gradient of a layer's bias row, per unit of alpha.
  (func (export "columnSums") (param $B i32) (param $delta i32) (param $Hp i32) (param $out i32)
    (local $b i32) (local $v i32) (local $stride i32) (local $a v128) (local $p i32)
    (local.set $stride (i32.shl (local.get $Hp) (i32.const 2)))
    (block $colsDone
      (loop $cols
        (br_if $colsDone (i32.ge_u (local.get $v) (local.get $stride)))
        (local.set $a (v128.const i32x4 0 0 0 0))
        (local.set $p (i32.add (local.get $delta) (local.get $v)))
        (local.set $b (i32.const 0))
        (block $done
          (loop $each
            (br_if $done (i32.ge_u (local.get $b) (local.get $B)))
            (local.set $a (f32x4.add (local.get $a) (v128.load (local.get $p))))
            (local.set $p (i32.add (local.get $p) (local.get $stride)))
            (local.set $b (i32.add (local.get $b) (i32.const 1)))
            (br $each)))
        (v128.store (i32.add (local.get $out) (local.get $v)) (local.get $a))
        (local.set $v (i32.add (local.get $v) (i32.const 16)))
        (br $cols))))
)
