/// Convolution, unfold/fold and pooling: against naive nested-loop references written here (Float64
/// accumulation, independent of the library) over random shapes in Float32 and Float64, against
/// PyTorch's values (fixtures/conv, made by make_conv_fixtures.py), derivatives by finite differences
/// and the dot-product test, vmap against loops, and the argument errors. `Twins` holds the same
/// functions written with plain tensor operations, for the transform matrix.
module SnnFunc.Tests.ConvTests

open System
open System.IO
open Xunit
open SnnFunc
open SnnFunc.Tests.AdTestUtil

// ---------------------------------------------------------------------------------------------
// Naive references on flat row-major arrays

/// A 2-d convolution problem: input [N; C; H; W], weight [O; C/groups; KH; KW].
type Spec =
    {
        N: int
        C: int
        H: int
        W: int
        O: int
        KH: int
        KW: int
        SH: int
        SW: int
        PH: int
        PW: int
        DH: int
        DW: int
        Groups: int
    }

    member s.OutH = (s.H + 2 * s.PH - s.DH * (s.KH - 1) - 1) / s.SH + 1
    member s.OutW = (s.W + 2 * s.PW - s.DW * (s.KW - 1) - 1) / s.SW + 1
    member s.XShape = [| s.N; s.C; s.H; s.W |]
    member s.WShape = [| s.O; s.C / s.Groups; s.KH; s.KW |]
    member s.YShape = [| s.N; s.O; s.OutH; s.OutW |]

    member s.Options: Conv2dOptions =
        {
            Stride = (s.SH, s.SW)
            Padding = (s.PH, s.PW)
            Dilation = (s.DH, s.DW)
            Groups = s.Groups
        }

/// y[n, o, p, q] = b[o] + Σ over ci, i, j of w[o, ci, i, j] · x[n, g · C/groups + ci, p·SH - PH + i·DH,
/// q·SW - PW + j·DW] (g = o's group; positions outside the input read 0).
let refConv2d (s: Spec) (x: float[]) (w: float[]) (b: float[] option) =
    let oh, ow = s.OutH, s.OutW
    let cg, og = s.C / s.Groups, s.O / s.Groups
    let y = Array.zeroCreate (s.N * s.O * oh * ow)

    for n in 0 .. s.N - 1 do
        for o in 0 .. s.O - 1 do
            let group = o / og

            for p in 0 .. oh - 1 do
                for q in 0 .. ow - 1 do
                    let mutable acc =
                        match b with
                        | Some b -> b[o]
                        | None -> 0.0

                    for ci in 0 .. cg - 1 do
                        let c = group * cg + ci

                        for i in 0 .. s.KH - 1 do
                            for j in 0 .. s.KW - 1 do
                                let r = p * s.SH - s.PH + i * s.DH
                                let col = q * s.SW - s.PW + j * s.DW

                                if r >= 0 && r < s.H && col >= 0 && col < s.W then
                                    acc <-
                                        acc
                                        + w[((o * cg + ci) * s.KH + i) * s.KW + j]
                                          * x[((n * s.C + c) * s.H + r) * s.W + col]

                    y[((n * s.O + o) * oh + p) * ow + q] <- acc

    y

/// torch.nn.functional.unfold: out[n, (c·KH + i)·KW + j, p·OutW + q] = x[n, c, p·SH - PH + i·DH, q·SW - PW + j·DW].
let refUnfold (s: Spec) (x: float[]) =
    let rows, l = s.C * s.KH * s.KW, s.OutH * s.OutW
    let out = Array.zeroCreate (s.N * rows * l)

    for n in 0 .. s.N - 1 do
        for c in 0 .. s.C - 1 do
            for i in 0 .. s.KH - 1 do
                for j in 0 .. s.KW - 1 do
                    for p in 0 .. s.OutH - 1 do
                        for q in 0 .. s.OutW - 1 do
                            let r = p * s.SH - s.PH + i * s.DH
                            let col = q * s.SW - s.PW + j * s.DW

                            if r >= 0 && r < s.H && col >= 0 && col < s.W then
                                out[(n * rows + (c * s.KH + i) * s.KW + j) * l + p * s.OutW + q] <- x[((n * s.C + c) * s.H + r) * s.W + col]

    out

/// torch.nn.functional.fold: the sum of the patch entries at the positions unfold reads them from.
let refFold (s: Spec) (patches: float[]) =
    let rows, l = s.C * s.KH * s.KW, s.OutH * s.OutW
    let x = Array.zeroCreate (s.N * s.C * s.H * s.W)

    for n in 0 .. s.N - 1 do
        for c in 0 .. s.C - 1 do
            for i in 0 .. s.KH - 1 do
                for j in 0 .. s.KW - 1 do
                    for p in 0 .. s.OutH - 1 do
                        for q in 0 .. s.OutW - 1 do
                            let r = p * s.SH - s.PH + i * s.DH
                            let col = q * s.SW - s.PW + j * s.DW

                            if r >= 0 && r < s.H && col >= 0 && col < s.W then
                                let k = ((n * s.C + c) * s.H + r) * s.W + col
                                x[k] <- x[k] + patches[(n * rows + (c * s.KH + i) * s.KW + j) * l + p * s.OutW + q]

    x

type PoolKind =
    | Sum
    | Avg
    | Max

/// Pools of x [N; C; H; W] (dilation 1): padding reads 0 for sum and average (the average always
/// divides by KH · KW, PyTorch's count_include_pad) and -inf for max.
let refPool (kind: PoolKind) (s: Spec) (x: float[]) =
    let oh, ow = s.OutH, s.OutW
    let y = Array.zeroCreate (s.N * s.C * oh * ow)

    for n in 0 .. s.N - 1 do
        for c in 0 .. s.C - 1 do
            for p in 0 .. oh - 1 do
                for q in 0 .. ow - 1 do
                    let mutable acc = if kind = Max then Double.NegativeInfinity else 0.0

                    for i in 0 .. s.KH - 1 do
                        for j in 0 .. s.KW - 1 do
                            let r = p * s.SH - s.PH + i
                            let col = q * s.SW - s.PW + j

                            let v =
                                if r >= 0 && r < s.H && col >= 0 && col < s.W then
                                    x[((n * s.C + c) * s.H + r) * s.W + col]
                                elif kind = Max then
                                    Double.NegativeInfinity
                                else
                                    0.0

                            acc <- if kind = Max then max acc v else acc + v

                    y[((n * s.C + c) * oh + p) * ow + q] <- if kind = Avg then acc / float (s.KH * s.KW) else acc

    y

// ---------------------------------------------------------------------------------------------
// The same functions with plain tensor operations (twins of the transform matrix)

module Twins =

    /// Entries start, start + stride, ... (count of them) along an axis.
    let private strided (axis: int) (start: int) (stride: int) (count: int) (x: Tensor) =
        x.Gather(axis, Array.init count (fun t -> start + stride * t))

    let private outSize (input: int) (pad: int) (dilation: int) (kernel: int) (stride: int) =
        (input + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1

    /// The strided window of x [N; C; H; W] (already padded) read at kernel offset (i, j): [N; C; oh; ow].
    let private window (i: int, j: int) (dh: int, dw: int) (sh: int, sw: int) (oh: int, ow: int) (x: Tensor) =
        x |> strided 2 (i * dh) sh oh |> strided 3 (j * dw) sw ow

    let private padded (ph: int, pw: int) (x: Tensor) =
        x.Pad([| 0; 0; ph; pw |], [| 0; 0; ph; pw |])

    /// conv2d: per group and kernel offset, the strided window contracted with that offset's weights.
    let conv2d (o: Conv2dOptions) (w: Tensor) (b: Tensor option) (x: Tensor) =
        let s, ws = x.Shape, w.Shape
        let (ph, pw), groups = o.Padding, o.Groups
        let cg, og, kh, kw = ws[1], ws[0] / groups, ws[2], ws[3]
        let oh = outSize s[2] ph (fst o.Dilation) kh (fst o.Stride)
        let ow = outSize s[3] pw (snd o.Dilation) kw (snd o.Stride)
        let xp = padded o.Padding x

        let perGroup =
            [
                for g in 0 .. groups - 1 ->
                    let xg = xp.Narrow(1, g * cg, cg)
                    let wg = w.Narrow(0, g * og, og)

                    [
                        for i in 0 .. kh - 1 do
                            for j in 0 .. kw - 1 do
                                let win = window (i, j) o.Dilation o.Stride (oh, ow) xg
                                let wij = wg.Narrow(2, i, 1).Narrow(3, j, 1).Reshape(og, cg)
                                win.Permute(0, 2, 3, 1).MatMul(wij.Transpose())
                    ]
                    |> List.reduce (+)
            ]

        let y = (Tensor.concat 3 perGroup).Permute(0, 3, 1, 2)

        match b with
        | Some b -> y + b.Reshape(1, ws[0], 1, 1)
        | None -> y

    /// conv1d as a conv2d of height 1.
    let conv1d (o: Conv1dOptions) (w: Tensor) (b: Tensor option) (x: Tensor) =
        let s, ws = x.Shape, w.Shape

        let o2 =
            {
                Stride = (1, o.Stride)
                Padding = (0, o.Padding)
                Dilation = (1, o.Dilation)
                Groups = o.Groups
            }

        let y =
            conv2d o2 (w.Reshape(ws[0], ws[1], 1, ws[2])) b (x.Reshape(s[0], s[1], 1, s[2]))

        y.Reshape(s[0], ws[0], -1)

    /// unfold: the windows of every kernel offset stacked after the channel axis.
    let unfold (o: UnfoldOptions) (x: Tensor) =
        let s = x.Shape
        let (kh, kw), (ph, pw) = o.Kernel, o.Padding
        let oh = outSize s[2] ph (fst o.Dilation) kh (fst o.Stride)
        let ow = outSize s[3] pw (snd o.Dilation) kw (snd o.Stride)
        let xp = padded o.Padding x

        let windows =
            [
                for i in 0 .. kh - 1 do
                    for j in 0 .. kw - 1 -> window (i, j) o.Dilation o.Stride (oh, ow) xp
            ]

        (Tensor.stack 2 windows).Reshape(s[0], s[1] * kh * kw, oh * ow)

    /// fold: every offset's slice of the patches scattered to its strided positions, summed, then
    /// the padding cut off.
    let fold (h: int, w: int) (o: UnfoldOptions) (p: Tensor) =
        let s = p.Shape

        let (kh, kw), (ph, pw), (dh, dw), (sh, sw) =
            o.Kernel, o.Padding, o.Dilation, o.Stride

        let c = s[1] / (kh * kw)
        let oh, ow = outSize h ph dh kh sh, outSize w pw dw kw sw
        let perOffset = p.Reshape(s[0], c, kh * kw, oh, ow)

        let sum =
            [
                for i in 0 .. kh - 1 do
                    for j in 0 .. kw - 1 ->
                        perOffset
                            .Narrow(2, i * kw + j, 1)
                            .Reshape(s[0], c, oh, ow)
                            .ScatterAdd(3, Array.init ow (fun t -> j * dw + t * sw), w + 2 * pw)
                            .ScatterAdd(2, Array.init oh (fun t -> i * dh + t * sh), h + 2 * ph)
            ]
            |> List.reduce (+)

        sum.Slice([| 0; 0; ph; pw |], [| s[0]; c; h; w |])

    /// max pooling: -inf padding, the windows of every offset stacked, and their maximum.
    let maxPool2d (o: Pool2dOptions) (x: Tensor) =
        let s = x.Shape
        let (kh, kw), (ph, pw) = o.Kernel, o.Padding

        let oh, ow =
            outSize s[2] ph 1 kh (fst o.Stride), outSize s[3] pw 1 kw (snd o.Stride)

        let hp, wp = s[2] + 2 * ph, s[3] + 2 * pw

        let border =
            Tensor.FromArray(
                Array.init (hp * wp) (fun k ->
                    let r, q = k / wp, k % wp

                    if r < ph || r >= ph + s[2] || q < pw || q >= pw + s[3] then
                        Double.NegativeInfinity
                    else
                        0.0),
                hp,
                wp
            )

        let xp = padded o.Padding x + border.Convert x.DType

        let windows =
            [
                for i in 0 .. kh - 1 do
                    for j in 0 .. kw - 1 -> window (i, j) (1, 1) o.Stride (oh, ow) xp
            ]

        (Tensor.stack 0 windows).Max 0

// ---------------------------------------------------------------------------------------------
// Random problems

/// A random convolution problem (stride, dilation, padding and groups each > 1 sometimes; the
/// input is at least as large as the dilated kernel minus the padding).
let randomSpec (rng: Random) =
    let groups = rng.Next(1, 4)
    let kh, kw = rng.Next(1, 5), rng.Next(1, 5)
    let dh, dw = rng.Next(1, 3), rng.Next(1, 3)
    let ph, pw = rng.Next(0, 3), rng.Next(0, 3)

    {
        N = rng.Next(1, 4)
        C = groups * rng.Next(1, 3)
        H = max 1 (dh * (kh - 1) + 1 - 2 * ph + rng.Next(0, 6))
        W = max 1 (dw * (kw - 1) + 1 - 2 * pw + rng.Next(0, 6))
        O = groups * rng.Next(1, 3)
        KH = kh
        KW = kw
        SH = rng.Next(1, 4)
        SW = rng.Next(1, 4)
        PH = ph
        PW = pw
        DH = dh
        DW = dw
        Groups = groups
    }

/// A random pooling problem (dilation 1, padding at most half the kernel).
let randomPoolSpec (rng: Random) =
    let kh, kw = rng.Next(1, 5), rng.Next(1, 5)
    let ph, pw = rng.Next(0, kh / 2 + 1), rng.Next(0, kw / 2 + 1)

    {
        N = rng.Next(1, 3)
        C = rng.Next(1, 4)
        H = max 1 (kh - 2 * ph + rng.Next(0, 7))
        W = max 1 (kw - 2 * pw + rng.Next(0, 7))
        O = 1
        KH = kh
        KW = kw
        SH = rng.Next(1, 4)
        SW = rng.Next(1, 4)
        PH = ph
        PW = pw
        DH = 1
        DW = 1
        Groups = 1
    }

let private poolOptions (s: Spec) : Pool2dOptions =
    {
        Kernel = (s.KH, s.KW)
        Stride = (s.SH, s.SW)
        Padding = (s.PH, s.PW)
    }

let private unfoldOptions (s: Spec) : UnfoldOptions =
    {
        Kernel = (s.KH, s.KW)
        Stride = (s.SH, s.SW)
        Padding = (s.PH, s.PW)
        Dilation = (s.DH, s.DW)
    }

/// Dyadic inputs make every product and partial sum exact in Float32 as well: any summation order
/// gives the reference's value, so the tolerance only covers the final division of an average.
let private tolerance (dtype: DType) = if dtype = Float32 then 1e-5 else 1e-12

let private dtypes = [ Float32; Float64 ]

let private describe (s: Spec) = sprintf "%A" s

// ---------------------------------------------------------------------------------------------
// Values against the references

[<Fact>]
let ``conv2d equals the nested-loop reference on random shapes in Float32 and Float64`` () =
    forAllSeeds 150 (fun seed ->
        let rng = Random seed
        let s = randomSpec rng

        for dtype in dtypes do
            let x = dyadic rng dtype s.XShape
            let w = dyadic rng dtype s.WShape

            let b =
                if rng.Next 2 = 0 then
                    Some(dyadic rng dtype [| s.O |])
                else
                    None

            let expected = refConv2d s (values x) (values w) (b |> Option.map values)
            let what = $"conv2d %s{dtype.Name} seed %d{seed} %s{describe s}"

            if rng.Next 4 = 0 && s.N = 1 then
                // An input without the batch axis gives the output without it.
                let y = Conv.conv2dWith s.Options w b (x.Squeeze 0)
                assertClose what 0.0 (tolerance dtype) (Tensor.ofArray64 expected s.YShape[1..]) y
            else
                let y = Conv.conv2dWith s.Options w b x
                Assert.Equal(dtype, y.DType)
                assertClose what 0.0 (tolerance dtype) (Tensor.ofArray64 expected s.YShape) y)

[<Fact>]
let ``conv2d edge cases: kernel as large as the input, batch 1, 1x1 kernels, stride larger than the kernel`` () =
    let rng = Random 11

    let cases =
        [
            // kernel = input size: one output position
            { (randomSpec rng) with
                N = 1
                C = 2
                H = 5
                W = 3
                O = 3
                KH = 5
                KW = 3
                SH = 1
                SW = 1
                PH = 0
                PW = 0
                DH = 1
                DW = 1
                Groups = 1
            }
            // kernel = padded input size, with dilation
            { (randomSpec rng) with
                N = 2
                C = 2
                H = 3
                W = 4
                O = 2
                KH = 3
                KW = 2
                SH = 2
                SW = 3
                PH = 1
                PW = 0
                DH = 2
                DW = 3
                Groups = 2
            }
            // 1x1 kernel, stride 3
            { (randomSpec rng) with
                N = 1
                C = 3
                H = 7
                W = 8
                O = 4
                KH = 1
                KW = 1
                SH = 3
                SW = 3
                PH = 0
                PW = 1
                DH = 1
                DW = 1
                Groups = 1
            }
            // depthwise (groups = channels)
            { (randomSpec rng) with
                N = 2
                C = 4
                H = 6
                W = 5
                O = 8
                KH = 3
                KW = 3
                SH = 1
                SW = 2
                PH = 1
                PW = 1
                DH = 1
                DW = 1
                Groups = 4
            }
            // non-square, large enough for the threaded kernels
            { (randomSpec rng) with
                N = 8
                C = 6
                H = 30
                W = 21
                O = 5
                KH = 5
                KW = 2
                SH = 1
                SW = 1
                PH = 2
                PW = 0
                DH = 1
                DW = 2
                Groups = 1
            }
        ]

    for s in cases do
        for dtype in dtypes do
            let x = dyadic rng dtype s.XShape
            let w = dyadic rng dtype s.WShape
            let b = dyadic rng dtype [| s.O |]
            let expected = refConv2d s (values x) (values w) (Some(values b))

            assertClose
                $"conv2d %s{dtype.Name} %s{describe s}"
                0.0
                (tolerance dtype)
                (Tensor.ofArray64 expected s.YShape)
                (Conv.conv2dWith s.Options w (Some b) x)

[<Fact>]
let ``conv1d equals the reference (a conv2d of height 1) on random shapes`` () =
    forAllSeeds 80 (fun seed ->
        let rng = Random seed

        let s =
            { randomSpec rng with
                H = 1
                KH = 1
                SH = 1
                PH = 0
                DH = 1
            }

        let options =
            { Conv1dOptions.Default with
                Stride = s.SW
                Padding = s.PW
                Dilation = s.DW
                Groups = s.Groups
            }

        for dtype in dtypes do
            let x = dyadic rng dtype [| s.N; s.C; s.W |]
            let w = dyadic rng dtype [| s.O; s.C / s.Groups; s.KW |]
            let b = dyadic rng dtype [| s.O |]
            let expected = refConv2d s (values x) (values w) (Some(values b))
            let y = Conv.conv1dWith options w (Some b) x
            assertClose $"conv1d %s{dtype.Name} seed %d{seed}" 0.0 (tolerance dtype) (Tensor.ofArray64 expected [| s.N; s.O; s.OutW |]) y
            // Without the batch axis.
            let y0 = Conv.conv1dWith options w (Some b) (x.Narrow(0, 0, 1).Squeeze 0)
            assertClose $"conv1d unbatched %s{dtype.Name} seed %d{seed}" 0.0 (tolerance dtype) (y.Narrow(0, 0, 1).Squeeze 0) y0)

[<Fact>]
let ``unfold has PyTorch's row order (c, kh, kw) and fold is its transpose`` () =
    forAllSeeds 80 (fun seed ->
        let rng = Random seed
        let s = randomSpec rng
        let o = unfoldOptions s
        let rows, l = s.C * s.KH * s.KW, s.OutH * s.OutW

        for dtype in dtypes do
            let x = dyadic rng dtype s.XShape
            let p = Conv.unfoldWith o x
            assertClose $"unfold %s{dtype.Name} seed %d{seed}" 0.0 0.0 (Tensor.ofArray64 (refUnfold s (values x)) [| s.N; rows; l |]) p
            let q = dyadic rng dtype [| s.N; rows; l |]
            let f = Conv.fold (s.H, s.W) o q
            assertClose $"fold %s{dtype.Name} seed %d{seed}" 0.0 (tolerance dtype) (Tensor.ofArray64 (refFold s (values q)) s.XShape) f
            // <unfold x, q> = <x, fold q>, exactly for these dyadic values.
            assertNear $"<unfold x, q> = <x, fold q> seed %d{seed}" 1e-12 (dot p q) (dot x f))

[<Fact>]
let ``unfold of a tiny image lists each patch's pixels channel by channel`` () =
    // x[c, r, q] = 100 c + 10 r + q, 2 x 2 windows of a 2 x 3 x 3 image: column l is the patch at
    // output position l, rows run over (c, i, j).
    let x =
        Tensor.ofArray64 (Array.init 18 (fun k -> float (100 * (k / 9) + 10 * (k % 9 / 3) + k % 3))) [| 2; 3; 3 |]

    let p = Conv.unfold (2, 2) x
    Assert.Equal<int[]>([| 8; 4 |], p.Shape)
    let firstPatch = (p.Narrow(1, 0, 1)).ToDoubleArray()
    Assert.Equal<float[]>([| 0.0; 1.0; 10.0; 11.0; 100.0; 101.0; 110.0; 111.0 |], firstPatch)
    let lastPatch = (p.Narrow(1, 3, 1)).ToDoubleArray()
    Assert.Equal<float[]>([| 11.0; 12.0; 21.0; 22.0; 111.0; 112.0; 121.0; 122.0 |], lastPatch)

[<Fact>]
let ``sum, average and max pools equal the references on random shapes (1-d and 2-d)`` () =
    forAllSeeds 100 (fun seed ->
        let rng = Random seed
        let s = randomPoolSpec rng
        let o = poolOptions s

        for dtype in dtypes do
            let x = dyadic rng dtype s.XShape
            let shape = [| s.N; s.C; s.OutH; s.OutW |]

            for kind, f in
                [
                    Sum, Conv.sumPool2dWith o
                    Avg, Conv.avgPool2dWith o
                    Max, Conv.maxPool2dWith o
                ] do
                let expected = Tensor.ofArray64 (refPool kind s (values x)) shape
                assertClose $"%A{kind} pool 2-d %s{dtype.Name} seed %d{seed} %s{describe s}" 1e-6 (tolerance dtype) expected (f x)

            // 1-d: the same with height 1.
            let s1 = { s with H = 1; KH = 1; SH = 1; PH = 0 }
            let x1 = dyadic rng dtype [| s.N; s.C; s.W |]

            let o1 =
                { Pool1dOptions.Of 1 with
                    Kernel = s.KW
                    Stride = s.SW
                    Padding = s.PW
                }

            for kind, f in
                [
                    Sum, Conv.sumPool1dWith o1
                    Avg, Conv.avgPool1dWith o1
                    Max, Conv.maxPool1dWith o1
                ] do
                let expected =
                    Tensor.ofArray64 (refPool kind s1 (values x1)) [| s.N; s.C; s1.OutW |]

                assertClose $"%A{kind} pool 1-d %s{dtype.Name} seed %d{seed}" 1e-6 (tolerance dtype) expected (f x1))

[<Fact>]
let ``default pools use non-overlapping windows`` () =
    let x = Tensor.ofArray64 (Array.init 16 float) [| 1; 1; 4; 4 |]
    Assert.Equal<float[]>([| 5.0; 7.0; 13.0; 15.0 |], (Conv.maxPool2d (2, 2) x).ToDoubleArray())
    Assert.Equal<float[]>([| 2.5; 4.5; 10.5; 12.5 |], (Conv.avgPool2d (2, 2) x).ToDoubleArray())
    Assert.Equal<float[]>([| 10.0; 18.0; 42.0; 50.0 |], (Conv.sumPool2d (2, 2) x).ToDoubleArray())
    let x1 = Tensor.ofArray64 [| 1.0; 5.0; 2.0; 0.0; 3.0; 3.0; 7.0 |] [| 1; 7 |]
    Assert.Equal<float[]>([| 5.0; 3.0 |], (Conv.maxPool1d 3 x1).ToDoubleArray())
    Assert.Equal<float[]>([| 8.0; 6.0 |], (Conv.sumPool1d 3 x1).ToDoubleArray())

// ---------------------------------------------------------------------------------------------
// PyTorch golden values

let private fixture (case: string) (name: string) =
    Tensor.loadNpy (Path.Combine(AppContext.BaseDirectory, "fixtures", "conv", $"%s{case}_%s{name}.npy"))

/// The output and the gradients of sum(y · u) with respect to each named input, against PyTorch's.
let private checkGolden (case: string) (names: string list) (f: Tensor[] -> Tensor) =
    let inputs = names |> List.map (fixture case) |> Array.ofList
    let u = fixture case "u"
    let y, pullback = Ad.vjp f inputs
    assertClose $"%s{case}: y" 1e-12 1e-12 (fixture case "y") y
    let grads = pullback u

    names
    |> List.iteri (fun i name -> assertClose $"%s{case}: gradient of %s{name}" 1e-12 1e-12 (fixture case ("g" + name)) grads[i])

[<Fact>]
let ``conv2d, conv1d, unfold, fold and the pools match PyTorch's values and gradients`` () =
    let conv2dGroups =
        {
            Stride = (2, 1)
            Padding = (1, 2)
            Dilation = (2, 1)
            Groups = 2
        }

    checkGolden "conv2d_groups" [ "x"; "w"; "b" ] (fun a -> Conv.conv2dWith conv2dGroups a[1] (Some a[2]) a[0])
    checkGolden "conv2d_full" [ "x"; "w" ] (fun a -> Conv.conv2d a[1] a[0])

    let conv1d =
        { Conv1dOptions.Default with
            Stride = 2
            Padding = 1
            Dilation = 2
            Groups = 2
        }

    checkGolden "conv1d" [ "x"; "w"; "b" ] (fun a -> Conv.conv1dWith conv1d a[1] (Some a[2]) a[0])

    let uo =
        {
            Kernel = (2, 3)
            Dilation = (2, 1)
            Padding = (1, 0)
            Stride = (1, 2)
        }

    checkGolden "unfold" [ "x" ] (fun a -> Conv.unfoldWith uo a[0])
    checkGolden "fold" [ "p" ] (fun a -> Conv.fold (6, 7) uo a[0])

    let po =
        {
            Kernel = (3, 2)
            Stride = (2, 1)
            Padding = (1, 1)
        }

    checkGolden "maxpool2d" [ "x" ] (fun a -> Conv.maxPool2dWith po a[0])
    checkGolden "avgpool2d" [ "x" ] (fun a -> Conv.avgPool2dWith po a[0])

    let po1 =
        { Pool1dOptions.Of 1 with
            Kernel = 3
            Stride = 2
            Padding = 1
        }

    checkGolden "maxpool1d" [ "x" ] (fun a -> Conv.maxPool1dWith po1 a[0])
    checkGolden "avgpool1d" [ "x" ] (fun a -> Conv.avgPool1dWith po1 a[0])

// ---------------------------------------------------------------------------------------------
// Derivatives

[<Fact>]
let ``conv2d derivatives in input, weight and bias: finite differences and the dot-product test`` () =
    forAllSeeds 25 (fun seed ->
        let rng = Random seed

        let s =
            { randomSpec rng with
                N = rng.Next(1, 3)
            }

        let f (a: Tensor[]) =
            Conv.conv2dWith s.Options a[1] (Some a[2]) a[0]

        let xs = [| randn rng s.XShape; randn rng s.WShape; randn rng [| s.O |] |]
        let what = $"conv2d seed %d{seed} %s{describe s}"
        dotProductTest what rng f xs 1e-12 |> ignore
        finiteDifferenceTest what rng f xs)

[<Fact>]
let ``conv1d, unfold, fold and pool derivatives: finite differences and the dot-product test`` () =
    forAllSeeds 20 (fun seed ->
        let rng = Random seed
        let s = randomSpec rng

        let c1 =
            { Conv1dOptions.Default with
                Stride = s.SW
                Padding = s.PW
                Dilation = s.DW
                Groups = s.Groups
            }

        let conv1 (a: Tensor[]) =
            Conv.conv1dWith c1 a[1] (Some a[2]) a[0]

        let xs1 =
            [|
                randn rng [| s.N; s.C; s.W |]
                randn rng [| s.O; s.C / s.Groups; s.KW |]
                randn rng [| s.O |]
            |]

        dotProductTest $"conv1d seed %d{seed}" rng conv1 xs1 1e-12 |> ignore
        finiteDifferenceTest $"conv1d seed %d{seed}" rng conv1 xs1

        let uo = unfoldOptions s
        let unfold (a: Tensor[]) = Conv.unfoldWith uo a[0]

        dotProductTest $"unfold seed %d{seed}" rng unfold [| randn rng s.XShape |] 1e-12
        |> ignore

        let fold (a: Tensor[]) = Conv.fold (s.H, s.W) uo a[0]
        let p = randn rng [| s.N; s.C * s.KH * s.KW; s.OutH * s.OutW |]
        dotProductTest $"fold seed %d{seed}" rng fold [| p |] 1e-12 |> ignore

        let ps = randomPoolSpec rng
        let po = poolOptions ps
        // Distinct values: no ties, so max pooling is differentiable where it is evaluated.
        let x = distinct rng ps.XShape

        for name, pool in
            [
                "sum", Conv.sumPool2dWith po
                "avg", Conv.avgPool2dWith po
                "max", Conv.maxPool2dWith po
            ] do
            let f (a: Tensor[]) = pool a[0]
            dotProductTest $"%s{name} pool seed %d{seed}" rng f [| x |] 1e-12 |> ignore
            finiteDifferenceTestWith 1e-5 1e-6 $"%s{name} pool seed %d{seed}" rng f [| x |])

[<Fact>]
let ``max pooling splits the gradient equally among tied maxima`` () =
    // One 2 x 2 window with three equal maxima: each receives a third (PyTorch gives the first all).
    let x = Tensor.ofArray64 [| 3.0; 1.0; 3.0; 3.0 |] [| 1; 1; 2; 2 |]
    let g = Ad.grad (fun x -> (Conv.maxPool2d (2, 2) x).Sum()) x
    assertClose "tied gradient" 1e-15 0.0 (Tensor.ofArray64 [| 1.0 / 3.0; 0.0; 1.0 / 3.0; 1.0 / 3.0 |] [| 1; 1; 2; 2 |]) g

[<Fact>]
let ``max pooling never selects its -inf padding, also for all-negative inputs`` () =
    let x = Tensor.ofArray64 [| -5.0; -2.0; -7.0; -1.0 |] [| 1; 1; 2; 2 |]

    let options =
        { Pool2dOptions.Of(2, 2) with
            Stride = (1, 1)
            Padding = (1, 1)
        }

    let y = Conv.maxPool2dWith options x
    Assert.Equal<float[]>([| -5.0; -2.0; -2.0; -5.0; -1.0; -1.0; -7.0; -1.0; -1.0 |], y.ToDoubleArray())
    let g = Ad.grad (fun x -> (Conv.maxPool2dWith options x).Sum()) x
    Assert.Equal<float[]>([| 2.0; 2.0; 1.0; 4.0 |], g.ToDoubleArray())

[<Fact>]
let ``reverse mode of conv2d and maxPool2d runs on the kernels (no twin calls)`` () =
    let rng = Random 5
    let x = randn rng [| 2; 3; 8; 8 |] |> Tensor.convert Float32
    let w = randn rng [| 4; 3; 3; 3 |] |> Tensor.convert Float32
    let before = KernelFn.TwinCallsOnThisThread

    let loss (x: Tensor, w: Tensor) =
        let y =
            Conv.conv2dWith
                { Conv2dOptions.Default with
                    Padding = (1, 1)
                }
                w
                None
                x

        (Conv.maxPool2d (2, 2) y).Square().Sum()

    let gx, gw = Ad.grad loss (x, w)
    Assert.Equal(0, KernelFn.TwinCallsOnThisThread - before)
    Assert.Equal<int[]>(x.Shape, gx.Shape)
    Assert.Equal<int[]>(w.Shape, gw.Shape)
    Assert.True(maxAbs gw > 0.0)

[<Fact>]
let ``Float32 gradients equal Float64 ones on shapes that use every block and tail of the kernels`` () =
    // 12 output channels (one 8-channel transpose block and a tail), 11 and 13 columns (partial
    // row chunks, overlapping transpose blocks), stride 1 (shifted views) and 2 (unfolded
    // patches), groups 1 and 2, and inner dimensions above 192 steps (the forward's and the
    // flipped input gradient's slices). With AVX-512, 16 or 32 output channels per group take the
    // channels-in-lanes tiles (with AVX2, multiples of 16 the 16 × 6 tiles over flat positions,
    // which span two output rows in the 5- and 6-column planes, and the 24-channel shape the 8 ×
    // 14 ones), which skip the kernel rows that read padding: the MNIST 16 -> 32
    // layer (its input gradient a 32 -> 16 flipped convolution), groups with rows narrower than a
    // transpose block, dilation with rows wider than a tile, and padding so deep that some output
    // rows read padding only (the tile stores the bias alone).
    let rng = Random 12

    for xShape, wShape, stride, padding, groups, dilation in
        [
            [| 3; 4; 14; 11 |], [| 12; 4; 3; 3 |], 1, 1, 1, 1
            [| 3; 4; 14; 11 |], [| 12; 4; 3; 3 |], 2, 1, 1, 1
            [| 3; 4; 14; 11 |], [| 12; 2; 3; 3 |], 1, 1, 2, 1
            [| 2; 24; 9; 13 |], [| 12; 24; 3; 3 |], 1, 1, 1, 1
            [| 2; 8; 9; 13 |], [| 24; 8; 5; 5 |], 1, 2, 1, 1
            [| 2; 16; 14; 14 |], [| 32; 16; 5; 5 |], 1, 2, 1, 1
            [| 2; 32; 7; 6 |], [| 64; 16; 3; 3 |], 1, 1, 2, 1
            [| 2; 16; 9; 20 |], [| 16; 16; 3; 3 |], 1, 2, 1, 2
            [| 1; 16; 6; 9 |], [| 32; 16; 5; 5 |], 1, 3, 1, 1
            [| 1; 32; 4; 5 |], [| 16; 32; 2; 2 |], 1, 3, 1, 1
        ] do
        let x = dyadic rng Float64 xShape
        let w = dyadic rng Float64 wShape
        let b = dyadic rng Float64 [| wShape[0] |]

        let options =
            {
                Stride = (stride, stride)
                Padding = (padding, padding)
                Dilation = (dilation, dilation)
                Groups = groups
            }

        let conv (x: Tensor, w: Tensor, b: Tensor) = Conv.conv2dWith options w (Some b) x
        let y64, pullback64 = Ad.vjp conv (x, w, b)
        let ct = dyadic rng Float64 y64.Shape
        let gx64, gw64, gb64 = pullback64 ct
        // Float64 against the nested-loop reference and the unfold + GEMM twins.
        let s =
            {
                N = xShape[0]
                C = xShape[1]
                H = xShape[2]
                W = xShape[3]
                O = wShape[0]
                KH = wShape[2]
                KW = wShape[3]
                SH = stride
                SW = stride
                PH = padding
                PW = padding
                DH = dilation
                DW = dilation
                Groups = groups
            }

        let cg: Kernels.ConvGeometry =
            {
                Window =
                    {
                        Channels = s.C
                        Height = s.H
                        Width = s.W
                        KernelH = s.KH
                        KernelW = s.KW
                        StrideH = s.SH
                        StrideW = s.SW
                        PadH = s.PH
                        PadW = s.PW
                        DilationH = dilation
                        DilationW = dilation
                        OutH = s.OutH
                        OutW = s.OutW
                    }
                Groups = groups
                OutChannels = s.O
            }

        let reference = refConv2d s (values x) (values w) (Some(values b))
        assertClose $"y against the reference, %s{Shape.format xShape}" 0.0 1e-12 (Tensor.ofArray64 reference s.YShape) y64
        assertClose $"dx against the twin, %s{Shape.format xShape}" 0.0 1e-12 (Conv.twinInputGrad cg w ct) gx64
        assertClose $"dw against the twin, %s{Shape.format xShape}" 0.0 1e-12 (Conv.twinWeightGrad cg x ct) gw64
        let f32 (t: Tensor) = t.Convert Float32
        let y32, pullback32 = Ad.vjp conv (f32 x, f32 w, f32 b)
        let gx32, gw32, gb32 = pullback32 (f32 ct)

        let what =
            $"x %s{Shape.format xShape}, w %s{Shape.format wShape}, stride %d{stride}, padding %d{padding}, groups %d{groups}, dilation %d{dilation}"
        // Dyadic values: every partial sum is exact in Float32 too.
        assertClose $"y, %s{what}" 0.0 1e-6 y64 y32
        assertClose $"dx, %s{what}" 0.0 1e-6 gx64 gx32
        assertClose $"dw, %s{what}" 0.0 1e-6 gw64 gw32
        assertClose $"db, %s{what}" 0.0 1e-6 gb64 gb32

[<Fact>]
let ``the convolution kernels' tensor-operation twins equal the kernels`` () =
    // The twins only run where a transform has no rule for a kernel (none in the library); they
    // must still compute the same products.
    forAllSeeds 30 (fun seed ->
        let rng = Random seed
        let s = randomSpec rng

        let cg: Kernels.ConvGeometry =
            {
                Window =
                    {
                        Channels = s.C
                        Height = s.H
                        Width = s.W
                        KernelH = s.KH
                        KernelW = s.KW
                        StrideH = s.SH
                        StrideW = s.SW
                        PadH = s.PH
                        PadW = s.PW
                        DilationH = s.DH
                        DilationW = s.DW
                        OutH = s.OutH
                        OutW = s.OutW
                    }
                Groups = s.Groups
                OutChannels = s.O
            }

        let x, w, b = randn rng s.XShape, randn rng s.WShape, randn rng [| s.O |]
        let dy = randn rng s.YShape
        let what = $"seed %d{seed} %s{describe s}"
        assertClose $"forward twin, %s{what}" 1e-12 1e-12 (Conv.conv2dWith s.Options w (Some b) x) (Conv.twinForward cg x w b)

        let _, pullback =
            Ad.vjp (fun (x: Tensor, w: Tensor) -> Conv.conv2dWith s.Options w None x) (x, w)

        let gx, gw = pullback dy
        assertClose $"input-gradient twin, %s{what}" 1e-12 1e-12 gx (Conv.twinInputGrad cg w dy)
        assertClose $"weight-gradient twin, %s{what}" 1e-12 1e-12 gw (Conv.twinWeightGrad cg x dy))

// ---------------------------------------------------------------------------------------------
// vmap against loops

let private slice (b: int) (t: Tensor) = t.Narrow(0, b, 1).Squeeze 0

[<Fact>]
let ``vmap of conv2d over inputs, weights or both equals the loop`` () =
    let rng = Random 7

    let s =
        { randomSpec rng with
            N = 2
            C = 4
            O = 6
            Groups = 2
            KH = 3
            KW = 2
            SH = 2
            SW = 1
            PH = 1
            PW = 1
            DH = 1
            DW = 2
            H = 7
            W = 6
        }

    let xs = randn rng (Array.append [| 3 |] s.XShape)
    let ws = randn rng (Array.append [| 3 |] s.WShape)
    let b = randn rng [| s.O |]
    let conv (w: Tensor) (x: Tensor) = Conv.conv2dWith s.Options w (Some b) x
    let overX = Ad.vmap (conv (slice 0 ws)) xs
    let overW = Ad.vmap (fun w -> conv w (slice 0 xs)) ws
    let overBoth = Ad.vmap (fun (w, x) -> conv w x) (ws, xs)

    for i in 0..2 do
        assertClose $"vmap over x, example %d{i}" 1e-12 1e-12 (conv (slice 0 ws) (slice i xs)) (slice i overX)
        assertClose $"vmap over w, example %d{i}" 1e-12 1e-12 (conv (slice i ws) (slice 0 xs)) (slice i overW)
        assertClose $"vmap over both, example %d{i}" 1e-12 1e-12 (conv (slice i ws) (slice i xs)) (slice i overBoth)

    // Per-example images without a batch axis: vmap is the batched convolution.
    let images = slice 0 xs
    assertClose "vmap over [C; H; W] images" 1e-12 1e-12 (conv (slice 0 ws) images) (Ad.vmap (conv (slice 0 ws)) images)

[<Fact>]
let ``vmap of pools, unfold, fold and conv1d equals the loop`` () =
    let rng = Random 8
    let xs = randn rng [| 3; 2; 3; 6; 5 |]

    let po =
        { Pool2dOptions.Of(3, 2) with
            Padding = (1, 1)
            Stride = (2, 1)
        }

    let uo =
        { UnfoldOptions.Of(2, 3) with
            Padding = (1, 1)
            Dilation = (2, 1)
        }

    let patches = Conv.unfoldWith uo (slice 0 xs)
    let ps = randn rng (Array.append [| 3 |] patches.Shape)
    let xs1 = randn rng [| 3; 2; 4; 9 |]
    let w1 = randn rng [| 2; 4; 3 |]

    let c1 =
        { Conv1dOptions.Default with
            Padding = 2
            Stride = 2
        }

    let cases: (string * (Tensor -> Tensor) * Tensor) list =
        [
            "sumPool2d", Conv.sumPool2dWith po, xs
            "avgPool2d", Conv.avgPool2dWith po, xs
            "maxPool2d", Conv.maxPool2dWith po, xs
            "unfold", Conv.unfoldWith uo, xs
            "fold", Conv.fold (6, 5) uo, ps
            "conv1d", Conv.conv1dWith c1 w1 None, xs1
        ]

    for name, f, inputs in cases do
        let batched = Ad.vmap f inputs

        for i in 0..2 do
            assertClose $"vmap %s{name}, example %d{i}" 1e-12 1e-12 (f (slice i inputs)) (slice i batched)

[<Fact>]
let ``per-example gradients of a conv net by vmap of grad equal the loop`` () =
    let rng = Random 9
    let xs = randn rng [| 4; 1; 2; 6; 6 |]
    let w = randn rng [| 3; 2; 3; 3 |]

    let loss (w: Tensor) (x: Tensor) =
        let y =
            Conv.conv2dWith
                { Conv2dOptions.Default with
                    Padding = (1, 1)
                }
                w
                None
                x

        (Conv.maxPool2d (2, 2) (y.Tanh())).Square().Sum()

    let perExample = Ad.vmap (fun x -> Ad.grad (fun w -> loss w x) w) xs

    for i in 0..3 do
        assertClose $"per-example gradient %d{i}" 1e-12 1e-12 (Ad.grad (fun w -> loss w (slice i xs)) w) (slice i perExample)

// ---------------------------------------------------------------------------------------------
// Argument errors

let private throws (what: string) (parts: string list) (f: unit -> Tensor) =
    let e = Assert.ThrowsAny<ArgumentException>(fun () -> f () |> ignore)

    for p in parts do
        Assert.True(e.Message.Contains p, $"%s{what}: message '%s{e.Message}' does not mention '%s{p}'")

[<Fact>]
let ``bad arguments raise ArgumentException naming the operation, the shapes and the values`` () =
    let x = Tensor.zeros [| 2; 4; 5; 5 |]
    let w = Tensor.zeros [| 6; 2; 3; 3 |]
    let d = Conv2dOptions.Default
    throws "rank" [ "Conv.conv2d"; "[4; 5]" ] (fun () -> Conv.conv2d w (Tensor.zeros [| 4; 5 |]))
    throws "weight rank" [ "Conv.conv2d"; "[6; 2; 3]" ] (fun () -> Conv.conv2d (Tensor.zeros [| 6; 2; 3 |]) x)

    throws "groups divide channels" [ "Conv.conv2d"; "3 channels"; "groups = 2" ] (fun () ->
        Conv.conv2dWith { d with Groups = 2 } (Tensor.zeros [| 6; 1; 3; 3 |]) None (Tensor.zeros [| 1; 3; 5; 5 |]))

    throws "groups divide out channels" [ "5 output channels"; "groups = 2" ] (fun () ->
        Conv.conv2dWith { d with Groups = 2 } (Tensor.zeros [| 5; 2; 3; 3 |]) None x)

    throws "weight channels" [ "[6; 2; 3; 3]"; "expects 2 input channels"; "has 4" ] (fun () -> Conv.conv2d w x)
    throws "non-positive groups" [ "groups = 0" ] (fun () -> Conv.conv2dWith { d with Groups = 0 } w None x)

    throws "kernel too large" [ "Conv.conv2d"; "(6, 3)"; "[2; 4; 5; 5]"; "(5, 5)" ] (fun () ->
        Conv.conv2dWith { d with Groups = 2 } (Tensor.zeros [| 6; 2; 6; 3 |]) None x)

    throws "dilated kernel too large" [ "dilation (3, 1)"; "spans (7, 3)" ] (fun () ->
        Conv.conv2dWith { d with Groups = 2; Dilation = (3, 1) } w None x)

    throws "stride" [ "stride (0, 1)" ] (fun () -> Conv.conv2dWith { d with Groups = 2; Stride = (0, 1) } w None x)

    throws "dilation" [ "dilation (1, -1)" ] (fun () ->
        Conv.conv2dWith
            { d with
                Groups = 2
                Dilation = (1, -1)
            }
            w
            None
            x)

    throws "padding" [ "padding (-1, 0)" ] (fun () -> Conv.conv2dWith { d with Groups = 2; Padding = (-1, 0) } w None x)
    throws "bias" [ "bias [6]"; "[5]" ] (fun () -> Conv.conv2dWith { d with Groups = 2 } w (Some(Tensor.zeros [| 5 |])) x)
    throws "dtype" [ "dtypes differ"; "float64" ] (fun () -> Conv.conv2dWith { d with Groups = 2 } (w |> Tensor.convert Float64) None x)
    throws "conv1d rank" [ "Conv.conv1d"; "[N; C; W]" ] (fun () -> Conv.conv1d (Tensor.zeros [| 2; 4; 3 |]) x)

    throws "conv1d kernel" [ "Conv.conv1d"; "spans 9"; "padded by 0 to 8" ] (fun () ->
        Conv.conv1d (Tensor.zeros [| 2; 4; 9 |]) (Tensor.zeros [| 1; 4; 8 |]))

    throws "pool padding" [ "Conv.maxPool2d"; "padding (2, 0)"; "(3, 3)" ] (fun () ->
        Conv.maxPool2dWith
            { Pool2dOptions.Of(3, 3) with
                Padding = (2, 0)
            }
            x)

    throws "pool kernel" [ "Conv.avgPool2d"; "(6, 1)" ] (fun () -> Conv.avgPool2d (6, 1) x)

    throws "pool stride" [ "Conv.sumPool1d"; "stride 0" ] (fun () ->
        Conv.sumPool1dWith { Pool1dOptions.Of 2 with Stride = 0 } (Tensor.zeros [| 2; 3; 5 |]))

    throws "unfold kernel" [ "Conv.unfold"; "kernel size (0, 2)" ] (fun () -> Conv.unfold (0, 2) x)

    throws "fold rows" [ "Conv.fold"; "not a multiple of kh · kw = 4" ] (fun () ->
        Conv.fold (5, 5) (UnfoldOptions.Of(2, 2)) (Tensor.zeros [| 2; 6; 16 |]))

    throws "fold positions" [ "Conv.fold"; "15 positions"; "4 × 4 = 16" ] (fun () ->
        Conv.fold (5, 5) (UnfoldOptions.Of(2, 2)) (Tensor.zeros [| 2; 8; 15 |]))
