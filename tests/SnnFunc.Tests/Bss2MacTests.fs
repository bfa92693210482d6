/// The chip's MAC mode: Bss2.Mac.matmul against an implementation of bss2.md 3.4 written here from
/// the description (over random shapes with ragged chunks, half-way values and saturating sums),
/// the float32 quirks the reference records, the noise's spread, named range errors, and the
/// straight-through gradient.
module SnnFunc.Tests.Bss2MacTests

open System
open Xunit
open SnnFunc
open SnnFunc.Backends.Bss2
open SnnFunc.Tests.AdTestUtil

/// bss2.md 3.4, step by step, for one output element at a time: round half to even (decimal
/// rounding), split the rows into chunks of 128, float32(S) times float32(ns · gain) in float32,
/// floor, clamp each chunk, sum in int64, clamp once.
let private reference (gain: float) (sends: int) (x: float[,]) (w: float[,]) =
    let b, k, n = Array2D.length1 x, Array2D.length2 x, Array2D.length2 w

    let q (v: float) =
        int (Decimal.Round(decimal v, MidpointRounding.ToEven))

    let scale = float32 (float sends * gain)

    Array2D.init b n (fun i j ->
        let chunks = [ 0 .. k - 1 ] |> List.chunkBySize 128

        let total =
            chunks
            |> List.sumBy (fun rows ->
                let s = rows |> List.sumBy (fun r -> int64 (q x[i, r]) * int64 (q w[r, j]))
                let v: float32 = float32 s * scale
                int64 (max -128.0f (min 127.0f (MathF.Floor v))))

        float (max -128L (min 127L total)))

let private run (c: MacConfig) (x: float[,]) (w: float[,]) =
    let b, k, n = Array2D.length1 x, Array2D.length2 x, Array2D.length2 w
    let xt = Tensor.FromArray(Array.init (b * k) (fun o -> x[o / k, o % k]), b, k)
    let wt = Tensor.FromArray(Array.init (k * n) (fun o -> w[o / n, o % n]), k, n)
    let y = (Mac.matmul c xt wt).ToDoubleArray()
    Array2D.init b n (fun i j -> y[i * n + j])

[<Fact>]
let ``without noise the product is bss2.md's arithmetic bit for bit`` () =
    let rng = Random 11

    for trial in 0..59 do
        let b = rng.Next(1, 5)
        let k = [| 1; 5; 127; 128; 129; 200; 256; 300; 385 |][trial % 9]
        let n = rng.Next(1, 30)
        // Half-way values (x.5) test the rounding; large ones saturate the chunks and the sum.
        let big = trial % 3 = 0
        let half () = float (rng.Next(0, 2)) * 0.5

        let x =
            Array2D.init b k (fun _ _ ->
                if rng.NextDouble() < 0.2 then
                    0.0
                else
                    min 31.0 (float (rng.Next(0, if big then 32 else 8)) + half ()))

        let w =
            Array2D.init k n (fun _ _ ->
                let m = if big then 63 else 20
                Math.Clamp(float (rng.Next(-m, m + 1)) + half () * float (rng.Next(-1, 2)), -63.0, 63.0))

        let gain = [| 0.002; 0.0017; 0.05; 1.0 |][trial % 4]
        let sends = 1 + trial % 3

        let c =
            { Mac.noiseless with
                Gain = gain
                NumSends = sends
            }

        let expected, actual = reference gain sends x w, run c x w

        for i in 0 .. b - 1 do
            for j in 0 .. n - 1 do
                if expected[i, j] <> actual[i, j] then
                    Assert.Fail(
                        $"trial %d{trial} (B %d{b}, K %d{k}, N %d{n}, gain %g{gain}, sends %d{sends}): [%d{i}, %d{j}] is %g{actual[i, j]}, expected %g{expected[i, j]}"
                    )

[<Fact>]
let ``float32 floors -500 n one lower, and the chunk sum is clamped once`` () =
    // S = -1500 at gain 0.002: float32 gives -3.0000001, floor -4 (a float64 port says -3).
    let y = run Mac.noiseless (array2D [ [ 30.0 ] ]) (array2D [ [ -50.0 ] ])
    Assert.Equal(-4.0, y[0, 0])
    // Three chunks of 128 rows saturating at 127, 127 and -128: 126, not a pairwise saturation.
    let x = Array2D.create 1 384 31.0
    let w = Array2D.init 384 1 (fun r _ -> if r < 256 then 63.0 else -63.0)
    Assert.Equal(126.0, (run Mac.noiseless x w)[0, 0])
    // Half to even: 2.5 -> 2 and 3.5 -> 4 (inputs), so 2·1 + 4·1 at gain 1.
    let g1 = { Mac.noiseless with Gain = 1.0 }
    Assert.Equal(6.0, (run g1 (array2D [ [ 2.5; 3.5 ] ]) (array2D [ [ 1.0 ]; [ 1.0 ] ]))[0, 0])

[<Fact>]
let ``noise is drawn per chunk with the configured spread`` () =
    // Zero inputs: each chunk gives floor(N(0, σ)); two chunks add two independent draws.
    let stats (k: int) =
        let c =
            { Mac.defaults with
                Key = Random.key 5L
            }

        let y =
            (Mac.matmul c (Tensor.zeros [| 400; k |]) (Tensor.ones [| k; 50 |])).ToDoubleArray()

        let mean = Array.average y
        mean, sqrt (y |> Array.averageBy (fun v -> (v - mean) ** 2.0))

    // E floor(Z) = -1/2 and Var floor(Z) = σ² + 1/12 for σ well above 1.
    let m1, s1 = stats 100
    Assert.True(abs (m1 + 0.5) < 0.05, $"mean %g{m1}")
    Assert.True(abs (s1 - sqrt (4.0 + 1.0 / 12.0)) < 0.05, $"std %g{s1}")
    let m2, s2 = stats 200
    Assert.True(abs (m2 + 1.0) < 0.07, $"two chunks: mean %g{m2}")
    Assert.True(abs (s2 - sqrt (2.0 * (4.0 + 1.0 / 12.0))) < 0.07, $"two chunks: std %g{s2}")

[<Fact>]
let ``out-of-range values and mismatched shapes are named errors`` () =
    let ones = Tensor.ones [| 2; 3 |]

    let fails (words: string list) (f: unit -> Tensor) =
        let e = Assert.ThrowsAny<ArgumentException>(fun () -> f () |> ignore)

        for w in words do
            Assert.True(e.Message.Contains(w: string), $"'%s{w}' in: %s{e.Message}")

    let x = Tensor.FromArray([| 1.0; 31.6; 0.0 |], 1, 3)
    fails [ "input [0, 1]"; "31.6"; "0..31" ] (fun () -> Mac.matmul Mac.noiseless x (Tensor.ones [| 3; 2 |]))
    let w = Tensor.FromArray([| 1.0; -63.5; 0.0; 2.0; 0.0; 1.0 |], 3, 2)
    fails [ "weight [0, 1]"; "-63.5"; "-63..63" ] (fun () -> Mac.matmul Mac.noiseless ones w)
    fails [ "[2; 3]"; "[4; 2]" ] (fun () -> Mac.matmul Mac.noiseless ones (Tensor.ones [| 4; 2 |]))
    fails [ "gain" ] (fun () -> Mac.matmul { Mac.noiseless with Gain = 2.0 } ones (Tensor.ones [| 3; 2 |]))

[<Fact>]
let ``the gradient is the straight-through surrogate's`` () =
    let c =
        { Mac.noiseless with
            Gain = 0.01
            NumSends = 2
        }

    let x = Tensor.FromArray([| 3.2; 0.4; 17.9; 30.6; 5.5; 2.0 |], 2, 3)
    let w = Tensor.FromArray([| 10.3; -4.0; 62.9; 0.2; -63.0; 7.7 |], 3, 2)
    let u = Tensor.FromArray([| 1.0; -2.0; 0.5; 3.0 |], 2, 2)

    let gx, gw =
        Ad.grad (fun (x: Tensor, w: Tensor) -> (Mac.matmul c x w * u).Sum()) (x, w)

    let s = float (float32 (2.0 * 0.01))
    assertClose "d/dx" 1e-6 1e-9 (Tensor.matmul u (w.Transpose()) * s) gx
    assertClose "d/dw" 1e-6 1e-9 (Tensor.matmul (x.Transpose()) u * s) gw

[<Fact>]
let ``the layers' values are hxtorch's and their derivatives straight through`` () =
    let v (xs: float list) = Tensor.FromArray(Array.ofList xs)
    let x = v [ -3.5; -0.2; 0.7; 5.9; 70.2; 200.0 ]
    // relu: clamp(floor x, 0, 127); derivative [x > 0].
    assertEqualValues "relu" (v [ 0.0; 0.0; 0.0; 5.0; 70.0; 127.0 ]) (Mac.relu Mac.defaults x)
    assertEqualValues "relu'" (v [ 0.0; 0.0; 1.0; 1.0; 1.0; 1.0 ]) (Ad.grad (fun x -> (Mac.relu Mac.defaults x).Sum()) x)
    // converting ReLU, shift 2: floor(clamp(floor x, 0, 127) / 4) clipped to 31; derivative / 4.
    assertEqualValues "convertingRelu" (v [ 0.0; 0.0; 0.0; 1.0; 17.0; 31.0 ]) (Mac.convertingRelu Mac.defaults 2 x)

    assertEqualValues
        "convertingRelu'"
        (v [ 0.0; 0.0; 0.25; 0.25; 0.25; 0.25 ])
        (Ad.grad (fun x -> (Mac.convertingRelu Mac.defaults 2 x).Sum()) x)

    // add: int8 operands, int8 sum; the derivative reaches both.
    let a, b = v [ 100.7; -100.0; 3.2 ], v [ 100.0; -100.5; -5.9 ]
    assertEqualValues "add" (v [ 127.0; -128.0; -3.0 ]) (Mac.add Mac.defaults a b)

    let ga, gb =
        Ad.grad (fun (a: Tensor, b: Tensor) -> (Mac.add Mac.defaults a b).Sum()) (a, b)

    assertEqualValues "add' (a)" (v [ 1.0; 1.0; 1.0 ]) ga
    assertEqualValues "add' (b)" (v [ 1.0; 1.0; 1.0 ]) gb

[<Fact>]
let ``a linear layer clamps its weights, adds its bias in int8 and batches under vmap`` () =
    let c = { Mac.noiseless with Gain = 0.05 }
    let w = Tensor.FromArray([| 70.0; -2.0; 10.0; -80.0; 3.0; 1.0 |], 3, 2)
    let bias = Tensor.FromArray [| 0.6; -1.0 |]
    let x = Tensor.FromArray([| 2.0; 4.0; 1.0; 31.0; 0.0; 5.0 |], 2, 3)
    let clamped = Tensor.FromArray([| 63.0; -2.0; 10.0; -63.0; 3.0; 1.0 |], 3, 2)
    let y = Mac.linear c w (Some bias) x
    let expected = Mac.add c (Mac.matmul c x clamped) bias
    assertEqualValues "the weights clamped to ±63" expected y
    // The gradient passes the clamp: that of the surrogate with the unclamped weights.
    let gw = Ad.grad (fun w -> (Mac.linear c w (Some bias) x).Sum()) w
    let s = float (Mac.scaleOf c)

    assertClose
        "d/dw"
        1e-6
        1e-9
        (Tensor.matmul (x.Transpose()) (Tensor.ones [| 2; 2 |] |> Tensor.convert Float64)
         * s)
        gw
    // vmap over examples: one product on the folded batch, the same numbers as one call.
    let ys = Ad.vmap (fun (xi: Tensor) -> Mac.linear c w (Some bias) xi) x
    assertEqualValues "vmap" y ys

[<Fact>]
let ``automatic num_sends is hxtorch's`` () =
    // bss2.md 3.4: fan_in 3 -> 39 (hxtorch's unit test), 100 -> 7, 500 -> 4, 784 -> 3 at gain 0.002, shift 1.
    for fanIn, sends in [ 3, 39; 100, 7; 500, 4; 784, 3 ] do
        let s, wStd, _ = Mac.initScales 0.002 1 fanIn
        Assert.Equal(sends, s)
        Assert.True(3.0 * wStd <= 63.0, $"fan-in %d{fanIn}: 3 std of the weights within ±63")

[<Fact>]
let ``averaged columns give the same value without noise and less noise with it`` () =
    let rng = Random 4

    let x =
        Tensor.FromArray(Array.init (64 * 20) (fun _ -> float (rng.Next(0, 32))), 64, 20)

    let w =
        Tensor.FromArray(Array.init (20 * 5) (fun _ -> float (rng.Next(-10, 11))), 20, 5)

    let quiet = { Mac.noiseless with Gain = 0.01 }
    assertEqualValues "noiseless" (Mac.linear quiet w None x) (Mac.linearAveraged quiet 4 w None x)

    let spread (avg: int) =
        let noisy =
            { quiet with
                NoiseStd = 2.0
                Key = Random.key 9L
            }

        let y =
            (Mac.linearAveraged noisy avg w None x - Mac.linear quiet w None x).ToDoubleArray()

        let m = Array.average y
        sqrt (y |> Array.averageBy (fun v -> (v - m) ** 2.0))

    let one, four = spread 1, spread 4
    // Four columns' floors of N(0, 2) averaged: about half the spread.
    Assert.True(four < 0.65 * one && four > 0.4 * one, $"spread %g{one} with one column, %g{four} with four")

[<Fact>]
let ``a convolution is one product over the patch matrix, chunks crossing channels`` () =
    // C 6, kernel 5 x 5: 150 patch rows, so the second 128-row chunk starts inside channel 5.
    let rng = Random 8
    let n, cin, h, wd, cout, k = 2, 6, 9, 8, 4, 5
    let stride, pad = (2, 1), (1, 2)
    let xs = Array.init (n * cin * h * wd) (fun _ -> float (rng.Next(0, 32)))
    let ws = Array.init (cout * cin * k * k) (fun _ -> float (rng.Next(-63, 64)))
    let x = Tensor.FromArray(xs, n, cin, h, wd)
    let w = Tensor.FromArray(ws, cout, cin, k, k)
    let c = { Mac.noiseless with Gain = 0.004 }
    let y = Mac.conv2d c stride pad w None x
    let outH = (h + 2 * fst pad - k) / fst stride + 1
    let outW = (wd + 2 * snd pad - k) / snd stride + 1
    Assert.Equal<int[]>([| n; cout; outH; outW |], y.Shape)
    // The patch matrix by hand: rows (n, oh, ow), columns (c, i, j), zeros in the padding.
    let pixel b ch r col =
        if r < 0 || r >= h || col < 0 || col >= wd then
            0.0
        else
            xs[((b * cin + ch) * h + r) * wd + col]

    let patches =
        Array2D.init (n * outH * outW) (cin * k * k) (fun row column ->
            let b, oh, ow = row / (outH * outW), row / outW % outH, row % outW
            let ch, i, j = column / (k * k), column / k % k, column % k
            pixel b ch (oh * fst stride - fst pad + i) (ow * snd stride - snd pad + j))

    let weights =
        Array2D.init (cin * k * k) cout (fun column o -> ws[o * cin * k * k + column])

    // conv2dPatches (what the time account reads) is that matrix.
    let exposed = (Mac.conv2dPatches stride pad (k, k) x).ToDoubleArray()
    Assert.Equal(patches.Length, exposed.Length)

    for row in 0 .. n * outH * outW - 1 do
        for column in 0 .. cin * k * k - 1 do
            Assert.Equal(patches[row, column], exposed[row * cin * k * k + column])

    let expected = reference 0.004 1 patches weights
    let actual = y.ToDoubleArray()

    for row in 0 .. n * outH * outW - 1 do
        for o in 0 .. cout - 1 do
            let b, pos = row / (outH * outW), row % (outH * outW)
            let a = actual[(b * cout + o) * outH * outW + pos]
            Assert.True((a = expected[row, o]), $"row %d{row}, output %d{o}: %g{a}, expected %g{expected[row, o]}")

    // The bias is added in float after the product (no floor, no clamp).
    let bias = Tensor.FromArray [| 0.25; -1.5; 300.0; 0.0 |]
    let withBias = Mac.conv2d c stride pad w (Some bias) x
    assertEqualValues "bias" (y + bias.Reshape [| 1; 4; 1; 1 |]) withBias

[<Fact>]
let ``the tiling and the spike trains' hardware time follow grenade's placement`` () =
    // 300 inputs, 600 outputs: 3 output chunks x 3 input chunks = 9 tiles in 5 sequential runs.
    Assert.Equal((9, 5), Mac.tiling 300 600)
    Assert.Equal((1, 1), Mac.tiling 128 256)
    // 128 non-zero inputs, one send: 128 events of 40 ns = 5.12 µs (bss2.md 3.1's ≈ 5.1 µs).
    let full = Tensor.ones [| 1; 128 |]
    Assert.Equal(5.12e-6, (Mac.spikeTrainSeconds Mac.defaults full 256)[0], 15)
    // 200 inputs (chunks of 128 and 72 non-zero), 2 sends, 10 outputs: 2 tiles on the two
    // hemispheres of one run; the fuller has 128 events.
    let x =
        Tensor.FromArray(Array.init 200 (fun i -> if i < 128 then 3.0 else (if i < 200 then 1.0 else 0.0)), 1, 200)

    Assert.Equal(128.0 * 2.0 * 40e-9, (Mac.spikeTrainSeconds { Mac.defaults with NumSends = 2 } x 10)[0], 15)
    // Zeros send nothing.
    Assert.Equal(0.0, (Mac.spikeTrainSeconds Mac.defaults (Tensor.zeros [| 1; 128 |]) 256)[0])

// -------------------------------------------------------------------------------------------------
// conv1d

[<Fact>]
let ``a 1-D convolution is one product over the patch matrix (c, k), chunks crossing channels`` () =
    // C 7, kernel 20: 140 patch rows, so the second 128-row chunk starts inside channel 6.
    let rng = Random 12
    let n, cin, l, cout, k = 2, 7, 30, 3, 20
    let stride, pad = 3, 2
    let xs = Array.init (n * cin * l) (fun _ -> float (rng.Next(0, 32)))
    let ws = Array.init (cout * cin * k) (fun _ -> float (rng.Next(-63, 64)))
    let x = Tensor.FromArray(xs, n, cin, l)
    let w = Tensor.FromArray(ws, cout, cin, k)
    let c = { Mac.noiseless with Gain = 0.004 }
    let y = Mac.conv1d c stride pad w None x
    let outL = (l + 2 * pad - k) / stride + 1
    Assert.Equal<int[]>([| n; cout; outL |], y.Shape)
    // The patch matrix by hand: rows (n, o), columns (c, j) (F.unfold's order), zeros in the padding.
    let sample b ch i =
        if i < 0 || i >= l then 0.0 else xs[(b * cin + ch) * l + i]

    let patches =
        Array2D.init (n * outL) (cin * k) (fun row column ->
            let b, o = row / outL, row % outL
            sample b (column / k) (o * stride - pad + column % k))

    let weights = Array2D.init (cin * k) cout (fun column o -> ws[o * cin * k + column])
    let expected = reference 0.004 1 patches weights
    let actual = y.ToDoubleArray()

    for row in 0 .. n * outL - 1 do
        for o in 0 .. cout - 1 do
            let b, pos = row / outL, row % outL
            let a = actual[(b * cout + o) * outL + pos]
            Assert.True((a = expected[row, o]), $"row %d{row}, output %d{o}: %g{a}, expected %g{expected[row, o]}")

    // The bias in float after the product; the weights clamped to ±63 like conv2d's.
    let bias = Tensor.FromArray [| 0.25; -1.5; 300.0 |]
    assertEqualValues "bias" (y + bias.Reshape [| 1; 3; 1 |]) (Mac.conv1d c stride pad w (Some bias) x)
    let doubled = w * 2.0

    assertEqualValues
        "clamped weights"
        (Mac.conv1d c stride pad (Mac.clampWeights c doubled) None x)
        (Mac.conv1d c stride pad doubled None x)
    // A kernel longer than the padded input is a named error.
    let e =
        Assert.ThrowsAny<ArgumentException>(fun () ->
            Mac.conv1d c 1 1 (Tensor.ones [| 1; 1; 6 |]) None (Tensor.ones [| 1; 1; 3 |])
            |> ignore)

    Assert.Contains("Bss2.Mac.conv1d", e.Message)
    Assert.Contains("longer than the padded input", e.Message)

// -------------------------------------------------------------------------------------------------
// Fixed-pattern noise

/// bss2.md 3.4 with the fixed pattern: per chunk s and output j, the physical column of tile t =
/// (j div 256) · chunks + s on hemisphere t mod 2, v = float32(S) · scale · g, floor, the column's
/// clamp; the chunks summed and clamped once.
let private referenceWithPattern (c: MacConfig) (p: MacFixedPattern) (x: float[,]) (w: float[,]) =
    let b, k, n = Array2D.length1 x, Array2D.length2 x, Array2D.length2 w
    let columns = Mac.columnPattern p
    let chunks = (k + 127) / 128
    let scale = float32 (float c.NumSends * c.Gain)

    Array2D.init b n (fun i j ->
        let total =
            [ 0 .. chunks - 1 ]
            |> List.sumBy (fun s ->
                let t = (j / 256) * chunks + s
                let pc = (t % 2) * 256 + j % 256

                let sum =
                    [ s * 128 .. min k ((s + 1) * 128) - 1 ]
                    |> List.sumBy (fun r -> int64 (round x[i, r]) * int64 (round w[r, j]))

                let v: float32 = float32 sum * scale * columns.Gains[pc]

                let lo, hi =
                    if columns.EarlySaturating[pc] then
                        -float32 p.EarlySaturationLevel, float32 p.EarlySaturationLevel
                    else
                        -128.0f, 127.0f

                int64 (max lo (min hi (MathF.Floor v))))

        float (max -128L (min 127L total)))

let private pattern (spread: float) (fraction: float) (seed: int64) =
    {
        GainSpread = spread
        EarlySaturationFraction = fraction
        EarlySaturationLevel = 80
        ChipKey = Random.key seed
    }

let private integers (rng: Random) (b: int) (k: int) (lo: int) (hi: int) =
    Array2D.init b k (fun _ _ -> float (rng.Next(lo, hi + 1)))

[<Fact>]
let ``a neutral fixed pattern (no spread, no early saturation) is the arithmetic without one bit for bit`` () =
    let rng = Random 21
    // 300 inputs, 600 outputs: chunks on both hemispheres, noise on, sums saturating.
    let x = integers rng 5 300 0 31
    let w = integers rng 300 600 -63 63

    let c =
        { Mac.defaults with
            Key = Random.key 3L
            Gain = 0.01
        }

    let neutral =
        { c with
            FixedPattern = Some(pattern 0.0 0.0 17L)
        }

    let a, b = run c x w, run neutral x w

    for i in 0..4 do
        for j in 0..599 do
            Assert.True((a[i, j] = b[i, j]), $"[%d{i}, %d{j}]: %g{b[i, j]} with the neutral pattern, %g{a[i, j]} without")

    // The pattern itself: every gain exactly 1, no column early.
    let columns = Mac.columnPattern (pattern 0.0 0.0 17L)
    Assert.All(columns.Gains, fun g -> Assert.Equal(1.0f, g))
    Assert.DoesNotContain(true, columns.EarlySaturating)

[<Fact>]
let ``the fixed pattern acts per physical column of each tile`` () =
    let rng = Random 22
    let x = integers rng 4 300 0 31
    let w = integers rng 300 600 -20 20
    let p = pattern 0.1 0.2 5L

    let c =
        { Mac.noiseless with
            Gain = 0.004
            FixedPattern = Some p
        }

    let expected, actual = referenceWithPattern c p x w, run c x w

    for i in 0..3 do
        for j in 0..599 do
            Assert.True((expected[i, j] = actual[i, j]), $"[%d{i}, %d{j}]: %g{actual[i, j]}, expected %g{expected[i, j]}")

[<Fact>]
let ``a column's gain measured from the outputs is its drawn factor`` () =
    // 100 inputs, 512 outputs: one input chunk, output j on physical column j (tile j div 256 on
    // hemisphere j div 256). Row b sends 31 on its first b + 1 inputs against weights 2: at gain
    // 0.01 the ideal output 0.62 (b + 1), up to 62 (times g, within the int8 range), in steps that
    // spread the floor's error.
    let p = pattern 0.1 0.0 8L

    let c =
        { Mac.noiseless with
            Gain = 0.01
            FixedPattern = Some p
        }

    let x = Array2D.init 100 100 (fun b r -> if r <= b then 31.0 else 0.0)
    let w = Array2D.create 100 512 2.0
    let y = run c x w
    let ideal = Array.init 100 (fun b -> float (float32 (62 * (b + 1)) * Mac.scaleOf c))
    let mx = Array.average ideal
    let gains = (Mac.columnPattern p).Gains

    let measured =
        Array.init 512 (fun j ->
            // Least-squares slope of y against the ideal value (the floor shifts the intercept only).
            let my = Array.init 100 (fun b -> y[b, j]) |> Array.average

            let num = Array.init 100 (fun b -> (ideal[b] - mx) * (y[b, j] - my)) |> Array.sum
            let den = ideal |> Array.sumBy (fun v -> (v - mx) ** 2.0)
            num / den)

    for j in 0..511 do
        Assert.True(abs (measured[j] - float gains[j]) < 0.01, $"column %d{j}: measured gain %g{measured[j]}, drawn %g{gains[j]}")

    let m = Array.average measured
    let spread = sqrt (measured |> Array.averageBy (fun g -> (g - m) ** 2.0))
    Assert.True(abs (m - 1.0) < 0.02 && abs (spread - 0.1) < 0.015, $"gains: mean %g{m}, std %g{spread}")

[<Fact>]
let ``early-saturating columns never exceed their level`` () =
    let p = pattern 0.05 0.25 9L
    let columns = Mac.columnPattern p
    Assert.Equal(128, columns.EarlySaturating |> Array.filter id |> Array.length)
    // One input chunk of 128 full inputs against ±63: every column saturates, early ones at ±80.
    let c =
        { Mac.noiseless with
            FixedPattern = Some p
        }

    let x = Array2D.create 2 128 31.0
    let w = Array2D.init 128 512 (fun _ j -> if j % 2 = 0 then 63.0 else -63.0)
    let y = run c x w

    for j in 0..511 do
        let high, low =
            (if columns.EarlySaturating[j] then
                 80.0, -80.0
             else
                 127.0, -128.0)

        Assert.Equal((if j % 2 = 0 then high else low), y[0, j])

    // With noise and random inputs too: the early columns stay within ±80.
    let rng = Random 23

    let noisy =
        { Mac.defaults with
            Key = Random.key 4L
            FixedPattern = Some p
            Gain = 0.05
        }

    let y = run noisy (integers rng 20 100 0 31) (integers rng 100 512 -63 63)

    for i in 0..19 do
        for j in 0..511 do
            if columns.EarlySaturating[j] then
                Assert.True(abs y[i, j] <= 80.0, $"[%d{i}, %d{j}] = %g{y[i, j]} on an early column")

[<Fact>]
let ``the same chip key draws the same pattern and another key another`` () =
    let a, b, other =
        Mac.columnPattern (pattern 0.1 0.3 1L), Mac.columnPattern (pattern 0.1 0.3 1L), Mac.columnPattern (pattern 0.1 0.3 2L)

    Assert.Equal<float32[]>(a.Gains, b.Gains)
    Assert.Equal<bool[]>(a.EarlySaturating, b.EarlySaturating)
    Assert.NotEqual<float32[]>(a.Gains, other.Gains)
    Assert.NotEqual<bool[]>(a.EarlySaturating, other.EarlySaturating)
    // The noise key does not move the pattern: two noise keys, no noise, one output.
    let rng = Random 24
    let x, w = integers rng 3 200 0 31, integers rng 200 40 -30 30

    let c =
        { Mac.noiseless with
            Gain = 0.01
            FixedPattern = Some(pattern 0.1 0.3 1L)
        }

    Assert.Equal<float seq>(Seq.cast<float> (run c x w), Seq.cast<float> (run { c with Key = Random.key 99L } x w))
    // Ranges are checked with the field named.
    let fails (field: string) (p: MacFixedPattern) =
        let e =
            Assert.ThrowsAny<ArgumentException>(fun () -> run { c with FixedPattern = Some p } x w |> ignore)

        Assert.Contains(field, e.Message)

    fails "GainSpread" (pattern -0.1 0.0 1L)
    fails "EarlySaturationFraction" (pattern 0.1 1.5 1L)

    fails
        "EarlySaturationLevel"
        { pattern 0.1 0.5 1L with
            EarlySaturationLevel = 0
        }

// -------------------------------------------------------------------------------------------------
// The ideal mode

[<Fact>]
let ``ideal mode is exactly the closed form scale · matmul x w, and its layers the unquantised operations`` () =
    let rng = Random 31
    // Out-of-range and fractional values: no rounding, no range check, no noise, no pattern.
    let x = AdTestUtil.uniform rng -5.0 40.0 [| 3; 200 |]
    let w = AdTestUtil.uniform rng -90.0 90.0 [| 200; 7 |]

    let ideal =
        { Mac.defaults with
            Mode = Ideal
            Gain = 0.01
            FixedPattern = Some(pattern 0.2 0.5 3L)
        }

    let s = float (Mac.scaleOf ideal)
    assertEqualValues "matmul" (Tensor.matmul x w * s) (Mac.matmul ideal x w)
    assertEqualValues "vector" ((Tensor.matmul (x.Narrow(0, 0, 1)) w * s).Squeeze 0) (Mac.matmul ideal ((x.Narrow(0, 0, 1)).Squeeze 0) w)
    let v (xs: float list) = Tensor.FromArray(Array.ofList xs)
    let z = v [ -3.5; -0.2; 0.7; 5.9; 70.2; 200.0 ]
    assertEqualValues "relu" (v [ 0.0; 0.0; 0.7; 5.9; 70.2; 200.0 ]) (Mac.relu ideal z)
    assertEqualValues "convertingRelu" (v [ 0.0; 0.0; 0.175; 1.475; 17.55; 50.0 ]) (Mac.convertingRelu ideal 2 z)
    assertEqualValues "add" (z + z) (Mac.add ideal z z)
    assertEqualValues "clampWeights" w (Mac.clampWeights ideal w)
    let bias = AdTestUtil.uniform rng -200.0 200.0 [| 7 |]
    assertEqualValues "linear" (Tensor.matmul x w * s + bias) (Mac.linear ideal w (Some bias) x)
    // Integer inputs and weights: the convolutions' sums are exact in any order.
    let xi = (AdTestUtil.uniform rng 0.0 40.0 [| 2; 3; 6; 5 |]).Floor()
    let wi = (AdTestUtil.uniform rng -70.0 70.0 [| 4; 3; 3; 2 |]).Floor()
    let cb = Tensor.FromArray [| 0.5; -1.0; 2.0; 300.0 |]

    assertEqualValues
        "conv2d"
        (Conv.conv2dWith
            { Conv2dOptions.Default with
                Stride = (2, 1)
                Padding = (1, 0)
            }
            wi
            None
            xi
         * s
         + cb.Reshape [| 1; 4; 1; 1 |])
        (Mac.conv2d ideal (2, 1) (1, 0) wi (Some cb) xi)

    let x1 = (AdTestUtil.uniform rng 0.0 40.0 [| 2; 3; 9 |]).Floor()
    let w1 = (AdTestUtil.uniform rng -70.0 70.0 [| 4; 3; 4 |]).Floor()

    assertEqualValues
        "conv1d"
        (Conv.conv1dWith
            { Conv1dOptions.Default with
                Stride = 2
                Padding = 1
            }
            w1
            None
            x1
         * s
         + cb.Reshape [| 1; 4; 1 |])
        (Mac.conv1d ideal 2 1 w1 (Some cb) x1)

[<Fact>]
let ``ideal and emulated gradients agree (the straight-through estimator is the ideal derivative)`` () =
    let rng = Random 32

    let emulated =
        { Mac.defaults with
            Gain = 0.01
            NumSends = 2
            Key = Random.key 6L
        }

    let ideal = { emulated with Mode = Ideal }

    let agree (what: string) (f: MacConfig -> Tensor * Tensor -> Tensor) (x: Tensor) (w: Tensor) =
        let grads (c: MacConfig) =
            let y = f c (x, w)
            let u = AdTestUtil.uniform (Random 5) -1.0 1.0 y.Shape
            Ad.grad (fun (x: Tensor, w: Tensor) -> (f c (x, w) * u).Sum()) (x, w)

        let (ex, ew), (ix, iw) = grads emulated, grads ideal
        assertClose $"%s{what} d/dx" 1e-12 1e-12 ix ex
        assertClose $"%s{what} d/dw" 1e-12 1e-12 iw ew

    let bias = AdTestUtil.uniform rng -3.0 3.0 [| 5 |]
    // Weights within ±63 (beyond, the emulated layers clamp them and the ideal ones do not).
    let x, w =
        AdTestUtil.uniform rng 0.0 31.0 [| 4; 150 |], AdTestUtil.uniform rng -63.0 63.0 [| 150; 5 |]

    agree "matmul" (fun c (x, w) -> Mac.matmul c x w) x w
    agree "linear" (fun c (x, w) -> Mac.linear c w (Some bias) x) x w
    agree "linearAveraged" (fun c (x, w) -> Mac.linearAveraged c 3 w (Some bias) x) x w

    agree
        "conv2d"
        (fun c (x, w) -> Mac.conv2d c (1, 2) (1, 1) w None x)
        (AdTestUtil.uniform rng 0.0 31.0 [| 2; 3; 6; 6 |])
        (AdTestUtil.uniform rng -63.0 63.0 [| 4; 3; 3; 3 |])

    agree
        "conv1d"
        (fun c (x, w) -> Mac.conv1d c 2 1 w None x)
        (AdTestUtil.uniform rng 0.0 31.0 [| 2; 3; 11 |])
        (AdTestUtil.uniform rng -63.0 63.0 [| 4; 3; 3 |])

// -------------------------------------------------------------------------------------------------
// Placement and the account

[<Fact>]
let ``the placement names each tile's run, hemisphere, rows and columns`` () =
    let tiles = Mac.placement 300 600
    Assert.Equal(9, tiles.Length)
    Assert.Equal((9, 5), Mac.tiling 300 600)

    Assert.Equal<MacTile>(
        {
            Index = 3
            Run = 1
            Hemisphere = 1
            Rows = (0, 128)
            Columns = (256, 512)
        },
        tiles[3]
    )

    Assert.Equal<MacTile>(
        {
            Index = 8
            Run = 4
            Hemisphere = 0
            Rows = (256, 300)
            Columns = (512, 600)
        },
        tiles[8]
    )

    // Every (row, column) of the product lies in exactly one tile.
    let covered = Array2D.zeroCreate<int> 300 600

    for t in tiles do
        for r in fst t.Rows .. snd t.Rows - 1 do
            for j in fst t.Columns .. snd t.Columns - 1 do
                covered[r, j] <- covered[r, j] + 1

    Assert.True(covered |> Seq.cast<int> |> Seq.forall ((=) 1))

[<Fact>]
let ``placement errors name the sizes, the runs needed and the limit`` () =
    let fails (words: string list) (f: unit -> unit) =
        let e = Assert.ThrowsAny<ArgumentException>(fun () -> f ())

        for w in words do
            Assert.True(e.Message.Contains(w: string), $"'%s{w}' in: %s{e.Message}")

    fails [ "K >= 1"; "K = 0"; "N = 5" ] (fun () -> Mac.placement 0 5 |> ignore)
    fails [ "N >= 1"; "N = 0" ] (fun () -> Mac.tiling 3 0 |> ignore)
    let c = { Mac.noiseless with MaxRuns = 4 }
    let x, w = Tensor.ones [| 1; 300 |], Tensor.ones [| 300; 600 |]

    let words =
        [ "Bss2.Mac.matmul"; "K = 300"; "N = 600"; "5 sequential runs"; "MaxRuns = 4" ]

    fails words (fun () -> Mac.matmul c x w |> ignore)
    // The ideal network is held to the same placement.
    fails words (fun () -> Mac.matmul { c with Mode = Ideal } x w |> ignore)
    // Five runs are allowed with MaxRuns 5.
    Assert.Equal<int[]>([| 1; 600 |], (Mac.matmul { c with MaxRuns = 5 } x w).Shape)
    fails [ "MaxRuns must be at least 1" ] (fun () -> Mac.matmul { c with MaxRuns = 0 } x w |> ignore)

[<Fact>]
let ``a pass takes its spike trains plus one readout per run, at the MAC mode's power`` () =
    // 300 inputs: chunks with 100, 50 and 44 non-zero inputs; a second row of zeros. Two sends.
    let x =
        Tensor.FromArray(
            Array.init 600 (fun i ->
                let r = i % 300

                if i >= 300 then 0.0
                elif r < 100 || (r >= 128 && r < 178) || r >= 256 then 5.0
                else 0.0),
            2,
            300
        )

    let c = { Mac.defaults with NumSends = 2 }
    let event = 2.0 * 40e-9
    // 100 outputs: tiles 0, 1 in run 0 (max(100, 50) events), tile 2 in run 1 (44).
    let seconds = Mac.passSeconds c x 100
    assertNear "300 x 100" 1e-12 ((100.0 + 44.0) * event + 2.0 * 1.7e-6) seconds[0]
    assertNear "zeros" 1e-12 (2.0 * 1.7e-6) seconds[1]
    // 600 outputs: 9 tiles in 5 runs reading chunks (0, 1), (2, 0), (1, 2), (0, 1), (2).
    assertNear "300 x 600" 1e-12 ((100.0 + 100.0 + 50.0 + 100.0 + 44.0) * event + 5.0 * 1.7e-6) ((Mac.passSeconds c x 600)[0])
    // The energy: 192 µJ per 276 µs (bss2.md 3.3), 0.696 W.
    assertNear "macPower" 1e-12 (192.0 / 276.0) SnnFunc.Backends.Bss2Figures.macPower
    assertNear "joules" 1e-12 (((100.0 + 44.0) * event + 2.0 * 1.7e-6) * 192e-6 / 276e-6) ((Mac.passJoules c x 100)[0])
    // Without the overhead a pass is its spike trains.
    let bare = { c with PassOverhead = 0.0 }
    Assert.Equal<float[]>(Mac.spikeTrainSeconds bare x 100, Mac.passSeconds bare x 100)
