;; The sampler's Fisher–Yates shuffle with util/random.ts's generator (xoshiro128**) and its
;; unbiased integers (Lemire's multiply-and-reject), draw for draw: the same permutation and the
;; same generator state afterwards as Prng.shuffle, which stays the reference (../shuffle.ts).
;;
;; Why here and not in JavaScript: a run shuffles its 60,000 rows once per pass, and the first
;; passes run before V8 has optimised the loop — interpreted, a shuffle took ~5 ms; compiled from
;; this module it takes a fraction of one from the first call. `npm run build:wasm` assembles it.
;;
;; Memory: the generator state at 0 (four i32: a, b, c, d), the array from 16.
(module
  (memory (export "memory") 1)

  ;; xoshiro128**: advance the state at $s, return the next 32 bits.
  (func $next (param $s i32) (result i32)
    (local $a i32) (local $b i32) (local $c i32) (local $d i32)
    (local.set $a (i32.load offset=0 (local.get $s)))
    (local.set $b (i32.load offset=4 (local.get $s)))
    (local.set $c (i32.xor (i32.load offset=8 (local.get $s)) (local.get $a)))
    (local.set $d (i32.xor (i32.load offset=12 (local.get $s)) (local.get $b)))
    (i32.store offset=0 (local.get $s) (i32.xor (local.get $a) (local.get $d)))
    (i32.store offset=4 (local.get $s) (i32.xor (local.get $b) (local.get $c)))
    (i32.store offset=8 (local.get $s) (i32.xor (local.get $c) (i32.shl (local.get $b) (i32.const 9))))
    (i32.store offset=12 (local.get $s) (i32.rotl (local.get $d) (i32.const 11)))
    (i32.mul (i32.rotl (i32.mul (local.get $b) (i32.const 5)) (i32.const 7)) (i32.const 9)))

  ;; Uniform in [0, n) for 2 ≤ n ≤ 2^21, as Prng.int draws it: x·n's high word, unless its low
  ;; word falls below 2^32 mod n (then draw again).
  (func $below (param $s i32) (param $n i32) (result i32)
    (local $x i32) (local $low i32)
    (loop $draw
      (local.set $x (call $next (local.get $s)))
      (local.set $low (i32.mul (local.get $x) (local.get $n)))
      (if (i32.lt_u (local.get $low) (local.get $n))
        (then
          (br_if $draw
            (i32.lt_u (local.get $low) (i32.rem_u (i32.sub (i32.const 0) (local.get $n)) (local.get $n)))))))
    (i32.wrap_i64
      (i64.shr_u
        (i64.mul (i64.extend_i32_u (local.get $x)) (i64.extend_i32_u (local.get $n)))
        (i64.const 32))))

  ;; Shuffle the n i32 at $a in place (n ≤ 2^21 + 1) with the generator state at $s.
  (func (export "shuffle") (param $s i32) (param $a i32) (param $n i32)
    (local $i i32) (local $j i32) (local $pi i32) (local $pj i32) (local $t i32)
    (local.set $i (i32.sub (local.get $n) (i32.const 1)))
    (block $done
      (loop $each
        (br_if $done (i32.le_s (local.get $i) (i32.const 0)))
        (local.set $j (call $below (local.get $s) (i32.add (local.get $i) (i32.const 1))))
        (local.set $pi (i32.add (local.get $a) (i32.shl (local.get $i) (i32.const 2))))
        (local.set $pj (i32.add (local.get $a) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $t (i32.load (local.get $pi)))
        (i32.store (local.get $pi) (i32.load (local.get $pj)))
        (i32.store (local.get $pj) (local.get $t))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br $each)))))
