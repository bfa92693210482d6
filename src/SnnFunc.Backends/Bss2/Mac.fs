/// The chip's matrix (MAC) mode: vector-matrix products in the analog synapse array with
/// hxtorch's mock arithmetic (bss2.md 3.4), bit for bit, and their straight-through gradient.
namespace SnnFunc.Backends.Bss2

open System
open SnnFunc
open SnnFunc.RandomBits

/// Settings of MAC products.
type MacConfig =
    {
        /// Output LSB per unit of Σ x·w (hxtorch's MockParameter.gain, default 0.002, bss2.md 3.4);
        /// in (0, 1].
        Gain: float
        /// How often the input vector is sent (each send integrates once more).
        NumSends: int
        /// Standard deviation of the Gaussian noise on each 128-row partial sum, in output LSB
        /// (default 2.0, bss2.md 3.4); 0 turns it off.
        NoiseStd: float
        /// The key of this product's noise (fold in a counter per call for fresh noise).
        Key: Key
    }

/// MAC products (the binding `Bss2.Mac`).
[<RequireQualifiedAccess>]
module Mac =
    /// Synapse rows per input chunk: a signed weight takes an excitatory and an inhibitory row of
    /// the 256 (bss2.md 3.4, hardware_matrix_height).
    [<Literal>]
    let ChunkRows = 128

    /// Neuron columns per hemisphere: the output tiling of the hardware (bss2.md 3.2).
    [<Literal>]
    let ChunkColumns = 256

    /// Gain 0.002, one send, noise 2.0 LSB (hxtorch's defaults, bss2.md 3.4).
    let defaults: MacConfig =
        {
            Gain = 0.002
            NumSends = 1
            NoiseStd = 2.0
            Key = SnnFunc.Random.key 0L
        }

    /// The defaults without noise: the bit-exact arithmetic alone.
    let noiseless = { defaults with NoiseStd = 0.0 }

    let private fail (message: string) : 'a =
        invalidArg "x" $"Bss2.Mac.matmul: %s{message}"

    let private check (c: MacConfig) =
        if not (c.Gain > 0.0 && c.Gain <= 1.0) then
            fail $"the gain must lie in (0, 1], got %g{c.Gain}"

        if c.NumSends < 1 then
            fail $"NumSends must be at least 1, got %d{c.NumSends}"

        if not (c.NoiseStd >= 0.0) || Double.IsInfinity c.NoiseStd then
            fail $"NoiseStd must be >= 0 and finite, got %g{c.NoiseStd}"

    /// The float32 factor of a partial sum: float32(float64(num_sends) · gain) (torch's scalar).
    let scaleOf (c: MacConfig) = float32 (float c.NumSends * c.Gain)

    /// torch.round: half to even.
    let private roundHalfEven (v: float) = Math.Round(v, MidpointRounding.ToEven)

    /// Round half to even, then the range check of the rounded values.
    let private quantise (what: string) (lo: int) (hi: int) (cols: int) (values: float[]) =
        values
        |> Array.mapi (fun i v ->
            let q = roundHalfEven v

            if not (q >= float lo && q <= float hi) then
                fail
                    $"%s{what} [%d{i / cols}, %d{i % cols}] = %g{v} rounds to %g{q}, outside %d{lo}..%d{hi} (layers clamp weights; scale inputs to 0..31)"

            int q)

    /// The product of concrete x [B; K] and w [K; N] (any float dtype) as the chip's int8 outputs
    /// [B; N] in Float32: per chunk of 128 rows the exact integer partial sum S, float32(S) ·
    /// scale, plus fresh N(0, σ) noise over [B; N] (float32), floor, clamp to [−128, 127]; the
    /// chunks summed exactly and clamped once.
    let forward (c: MacConfig) (x: Tensor) (w: Tensor) : Tensor =
        check c

        if x.Rank <> 2 || w.Rank <> 2 then
            fail $"x must be [batch; K] and w [K; N], got %s{Shape.format x.Shape} and %s{Shape.format w.Shape}"

        let batch, k, n = x.Shape[0], x.Shape[1], w.Shape[1]

        if w.Shape[0] <> k then
            fail $"x %s{Shape.format x.Shape} has %d{k} inputs, w %s{Shape.format w.Shape} has %d{w.Shape[0]} rows"

        let xq = quantise "input" 0 31 k (x.ToDoubleArray())
        let wq = quantise "weight" -63 63 n (w.ToDoubleArray())
        let scale = scaleOf c
        let total = Array.zeroCreate<int> (batch * n)
        let partial = Array.zeroCreate<int> n
        let chunks = (k + ChunkRows - 1) / ChunkRows

        for chunk in 0 .. chunks - 1 do
            let k0, k1 = chunk * ChunkRows, min k ((chunk + 1) * ChunkRows)

            let noise =
                if c.NoiseStd = 0.0 then
                    null
                else
                    let std = float32 c.NoiseStd

                    (SnnFunc.Random.normalAs Float32 (SnnFunc.Random.foldIn c.Key chunk) [| batch; n |]).ToArray()
                    |> Array.map (fun z -> z * std)

            for b in 0 .. batch - 1 do
                Array.Clear partial

                for r in k0 .. k1 - 1 do
                    let xv = xq[b * k + r]

                    if xv <> 0 then
                        let o = r * n

                        for j in 0 .. n - 1 do
                            partial[j] <- partial[j] + xv * wq[o + j]

                for j in 0 .. n - 1 do
                    // |S| <= 128 · 31 · 63 < 2^24: float32(S) is exact; one rounding in the product.
                    let v = float32 partial[j] * scale
                    let v = if isNull noise then v else v + noise[b * n + j]
                    let q = Math.Clamp(floor (float v), -128.0, 127.0)
                    total[b * n + j] <- total[b * n + j] + int q

        let out = total |> Array.map (fun t -> float32 (Math.Clamp(t, -128, 127)))
        Tensor.FromArray(out, batch, n)

    /// The forward product as a kernel: concrete values only, no derivative (the straight-through
    /// estimator supplies it), vmap folded into the product's batch.
    type private MacForward(c: MacConfig) =
        inherit KernelFn("Bss2.Mac.matmul")

        override _.Kernel args = [| forward c args[0] args[1] |]

        override this.Twin _ =
            invalidOp $"%s{this.Name}: the chip's product runs on concrete values (a transform without a rule reached it)"

        override this.Jvp(primals, _) =
            Tensor.ApplyCustom(this, primals), [| null |]

        override this.Batch(args, batched, size) =
            let x, w = args[0], args[1]

            if batched[1] then
                // Each member its own weights: one product per member.
                let xs i =
                    if batched[0] then x.Narrow(0, i, 1).Squeeze 0 else x

                Some
                    [|
                        Tensor.stack
                            0
                            [
                                for i in 0 .. size - 1 ->
                                    (Tensor.ApplyCustom(
                                        MacForward
                                            { c with
                                                Key = SnnFunc.Random.foldIn c.Key (1_000_003 + i)
                                            },
                                        xs i,
                                        w.Narrow(0, i, 1).Squeeze 0
                                    ))[0]
                            ]
                    |]
            else
                // [S; B; K] -> [S·B; K]: one product, the noise drawn over the folded batch.
                let shape = x.Shape
                let folded = x.Reshape [| shape[0] * shape[1]; shape[2] |]
                let y = (Tensor.ApplyCustom(this, folded, w))[0]
                Some [| y.Reshape [| shape[0]; shape[1]; y.Shape[1] |] |]

    /// The chip's product x @ w (x [B; K] or [K], w [K; N]) with hxtorch's arithmetic as the value
    /// and the derivative of its surrogate gain · num_sends · x @ w (straight through: the
    /// unrounded x and w, no masks for rounding, floor or saturation, bss2.md 3.4).
    let matmul (c: MacConfig) (x: Tensor) (w: Tensor) : Tensor =
        if w.Rank <> 2 then
            fail $"w must be [K; N], got %s{Shape.format w.Shape}"

        let vector = x.Rank = 1
        let x2 = if vector then x.Unsqueeze 0 else x

        if x2.Rank <> 2 then
            fail $"x must be [batch; K] or [K], got %s{Shape.format x.Shape}"

        let chip = (Tensor.ApplyCustom(MacForward c, x2, w))[0]
        let surrogate = Tensor.matmul x2 w * float (scaleOf c)
        let y = SnnFunc.Backends.Hil.substitute surrogate (chip.Convert surrogate.DType)
        if vector then y.Squeeze 0 else y

    // ---------------------------------------------------------------------------------------------
    // Layers (hxtorch.perceptron's, bss2.md 3.4): chip values, straight-through derivatives

    /// `value` forward and `surrogate`'s derivative (Hil's substitution).
    let private straight (value: Tensor) (surrogate: Tensor) =
        SnnFunc.Backends.Hil.substitute surrogate value

    let private clampTo (lo: float) (hi: float) (x: Tensor) =
        let like (v: float) = Tensor.Scalar(v, x.DType)
        x.Maximum(like lo).Minimum(like hi)

    let private positive (x: Tensor) =
        Ad.stopGradient ((x.Gt 0.0).Convert x.DType)

    /// The weights a layer multiplies: clamped to ±63, the derivative passing (hxtorch clamps the
    /// parameter in place before each product, which its gradient does not see).
    let clampWeights (w: Tensor) = straight (clampTo -63.0 63.0 w) w

    /// hxtorch's relu: clamp(floor x, 0, 127); derivative [x > 0].
    let relu (x: Tensor) =
        straight (clampTo 0.0 127.0 (x.Floor())) (x * positive x)

    /// hxtorch's converting ReLU, from an int8 output to the next layer's 5-bit input:
    /// clamp(floor(clamp(floor x, 0, 127) / 2^shift), 0, 31); derivative [x > 0] / 2^shift (no
    /// masks for the clips).
    let convertingRelu (shift: int) (x: Tensor) =
        if shift < 0 || shift > 7 then
            invalidArg "shift" $"Bss2.Mac.convertingRelu: the shift must lie in 0..7, got %d{shift}"

        let d = float (1 <<< shift)
        straight (clampTo 0.0 31.0 ((clampTo 0.0 127.0 (x.Floor()) / d).Floor())) (x * positive x / d)

    /// hxtorch's add of int8 values: clamp(clamp(floor a) + clamp(floor b)), every clamp to
    /// [−128, 127]; the derivative passes to both.
    let add (a: Tensor) (b: Tensor) =
        let int8 (t: Tensor) = clampTo -128.0 127.0 (t.Floor())
        straight (int8 (int8 a + int8 b)) (a + b)

    /// A linear layer on the chip: x [B; K] (or [K]) in 0..31 times the clamped weights w [K; N],
    /// the bias (if any) through the int8 add (as hxtorch's Linear does).
    let linear (c: MacConfig) (w: Tensor) (bias: Tensor option) (x: Tensor) =
        let y = matmul c x (clampWeights w)

        match bias with
        | Some b -> add y b
        | None -> y

    /// A linear layer whose outputs each occupy `avg` columns (the weights repeated), averaged
    /// after the product (float32 mean) to average the columns' noise; then the bias through the
    /// int8 add (hxtorch's Linear(avg)).
    let linearAveraged (c: MacConfig) (avg: int) (w: Tensor) (bias: Tensor option) (x: Tensor) =
        if avg < 1 then
            invalidArg "avg" $"Bss2.Mac.linearAveraged: avg must be at least 1, got %d{avg}"

        let k, n = w.Shape[0], w.Shape[1]
        // [K; N] -> [K; N; avg] -> [K; N·avg]: output j on columns j·avg .. j·avg + avg − 1.
        let repeated =
            (clampWeights w).Unsqueeze(2).BroadcastTo([| k; n; avg |]).Reshape [| k; n * avg |]

        let y = matmul c x repeated
        let y = y.Reshape(Array.append y.Shape[.. y.Rank - 2] [| n; avg |]).Mean(y.Rank)

        match bias with
        | Some b -> add y b
        | None -> y

    /// hxtorch's automatic num_sends for a layer of `fanIn` inputs (MACLayer.reset_parameters,
    /// bss2.md 3.4): the weight scale std = 2^reluShift · √2 / gain / √fanIn makes the outputs of
    /// unit-variance inputs span the converting ReLU's range; num_sends = ceil(std / 21), 21 = 63 / 3
    /// so that three standard deviations of the weights std / num_sends fit in ±63. Returns
    /// (num_sends, the weights' standard deviation, the bias's uniform bound std · √3 / 31).
    let initScales (gain: float) (reluShift: int) (fanIn: int) =
        if fanIn < 1 then
            invalidArg "fanIn" $"Bss2.Mac.initScales: fanIn must be at least 1, got %d{fanIn}"

        let std = float (1 <<< reluShift) * sqrt 2.0 / gain / sqrt (float fanIn)
        let sends = int (ceil (std / 21.0))
        sends, std / float sends, std * sqrt 3.0 / 31.0

    /// A 2-D convolution on the chip (hxtorch's Conv2d, bss2.md 3.4): x [N; C; H; W] (values 0..31
    /// after the zero padding) as its patch matrix, rows (n, oh, ow) × columns (c, i, j) in
    /// F.unfold's order, times the clamped weights [C_out; C; kh; kw] flattened, in one product
    /// (so the 128-row chunks cross channel boundaries); the bias added in float after it, with no
    /// floor or clamp. Returns [N; C_out; OutH; OutW].
    let conv2d (c: MacConfig) (stride: int * int) (padding: int * int) (w: Tensor) (bias: Tensor option) (x: Tensor) =
        if w.Rank <> 4 || x.Rank <> 4 || w.Shape[1] <> x.Shape[1] then
            invalidArg
                "w"
                $"Bss2.Mac.conv2d: needs x [N; C; H; W] and w [C_out; C; kh; kw] with the same C, got %s{Shape.format x.Shape} and %s{Shape.format w.Shape}"

        let cout, cin, kh, kw = w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]

        let options: UnfoldOptions =
            {
                Kernel = (kh, kw)
                Stride = stride
                Padding = padding
                Dilation = (1, 1)
            }

        let patches = Conv.unfoldWith options x // [N; C·kh·kw; L]
        let batch, rows, positions = patches.Shape[0], patches.Shape[1], patches.Shape[2]
        let matrix = patches.Permute(0, 2, 1).Reshape [| batch * positions; rows |]
        let weights = (clampWeights w).Reshape([| cout; cin * kh * kw |]).Transpose()
        let y = matmul c matrix weights // [N·L; C_out]
        let ph, pw = padding
        let sh, sw = stride
        let outH = (x.Shape[2] + 2 * ph - kh) / sh + 1
        let outW = (x.Shape[3] + 2 * pw - kw) / sw + 1

        let y =
            y.Reshape([| batch; positions; cout |]).Permute(0, 2, 1).Reshape [| batch; cout; outH; outW |]

        match bias with
        | Some b -> y + b.Reshape [| 1; cout; 1; 1 |]
        | None -> y

    /// FPGA cycles between two input events of a MAC pass (hxtorch's wait_between_events, 5 = 40 ns,
    /// bss2.md 3.4).
    [<Literal>]
    let WaitBetweenEvents = 5

    /// The tiles of a product with K inputs and N outputs (256-column output chunks outer, 128-row
    /// input chunks inner): tile t runs on hemisphere t mod 2 in sequential run t div 2 (grenade's
    /// placement, bss2.md 3.4). Returns (tiles, sequential runs).
    let tiling (k: int) (n: int) =
        let tiles =
            ((n + ChunkColumns - 1) / ChunkColumns) * ((k + ChunkRows - 1) / ChunkRows)

        tiles, (tiles + 1) / 2

    /// The hardware seconds of the input spike trains of one product per row of x [B; K] (values
    /// 0..31) with N outputs: per sequential run, the non-zero inputs of the fuller of its two
    /// hemispheres' tiles × num_sends × 40 ns (bss2.md 3.1). The reset and the CADC readout of each
    /// pass come on top (the reference gives no figure for them).
    let spikeTrainSeconds (c: MacConfig) (x: Tensor) (n: int) : float[] =
        if x.Rank <> 2 then
            invalidArg "x" $"Bss2.Mac.spikeTrainSeconds: x must be [batch; K], got %s{Shape.format x.Shape}"

        let batch, k = x.Shape[0], x.Shape[1]
        let values = x.ToDoubleArray()
        let inputChunks = (k + ChunkRows - 1) / ChunkRows
        let tiles, runs = tiling k n

        let perEvent =
            float WaitBetweenEvents
            * SnnFunc.Backends.Bss2Figures.timestampClock
            * float c.NumSends

        Array.init batch (fun b ->
            let nonZero chunk =
                let k0, k1 = chunk * ChunkRows, min k ((chunk + 1) * ChunkRows)

                Seq.init (k1 - k0) (fun r -> values[b * k + k0 + r])
                |> Seq.filter (fun v -> roundHalfEven v <> 0.0)
                |> Seq.length

            // Tile t reads input chunk t mod inputChunks (output chunk outer, input chunk inner).
            let events t = nonZero (t % inputChunks)

            Seq.init runs (fun run -> max (events (2 * run)) (if 2 * run + 1 < tiles then events (2 * run + 1) else 0))
            |> Seq.sumBy (fun e -> float e * perEvent))
